"""The ``rgnet`` command: ``record`` IMP runs, ``info`` on a file, ``flow`` analysis.

Errors caused by the user's input print one sentence and exit with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rgnet.errors import RgnetError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse would print the whole usage first)
        self.exit(2, f"rgnet: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rgnet", description="Lottery-ticket experiments as renormalisation-group flows.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("record", help="run IMP and record every level into an HDF5 file (resumable)",
                       description="Run iterative magnitude pruning and record each level as a theory. With no "
                                   "arguments: MNIST-1D, an MLP, 12 levels at p = 0.2. Re-running with the same "
                                   "config and --out resumes after the last complete level.")
    r.add_argument("--config", metavar="TOML", help="run config file; flags given as well override it")
    r.add_argument("--task", help="task name (mnist1d, teacher, mnist, fashion_mnist, kmnist, cifar10, cifar100)")
    r.add_argument("--task-param", action="append", default=[], metavar="KEY=VALUE",
                   help="task parameter, repeatable (e.g. corr_noise_scale=0.5); VALUE is parsed as JSON")
    r.add_argument("--model", help="model name (mlp, lenet_300_100, cnn1d, conv2, conv4, conv6, resnet20, ...)")
    r.add_argument("--widths", help="hidden widths of mlp, comma-separated (e.g. 100,100)")
    r.add_argument("--levels", type=int, help="IMP levels after the dense one")
    r.add_argument("--fraction", type=float, help="fraction of surviving weights pruned per level")
    r.add_argument("--scope", help="global or layerwise pruning")
    r.add_argument("--output-fraction", type=float, help="pruning fraction of the output layer")
    r.add_argument("--prune-first", action=argparse.BooleanOptionalAction, default=None,
                   help="prune the first layer (default: the model's own choice)")
    r.add_argument("--prune-output", action=argparse.BooleanOptionalAction, default=None,
                   help="prune the output layer (default: the model's own choice)")
    r.add_argument("--rewind", type=int, help="rewind iteration k (0 = initialisation)")
    r.add_argument("--target-density", type=float, help="stop once the density is at or below this")
    r.add_argument("--seed", type=int)
    r.add_argument("--steps", type=int, help="training iterations per level")
    r.add_argument("--batch-size", type=int)
    r.add_argument("--optimizer", help="adam or sgd")
    r.add_argument("--lr", type=float, help="learning rate")
    r.add_argument("--eval-every", type=int, help="evaluate every E iterations")
    r.add_argument("--no-tensors", action="store_true", help="do not store trained weights of every level")
    r.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    r.add_argument("--threads", type=int, help="CPU threads (default: 1 for small models)")
    r.add_argument("--data-root", help="folder with image datasets (default $RGNET_DATA)")
    r.add_argument("--out", help="output file (default runs/<task>-<model>-s<seed>-<run_id>.h5)")
    r.add_argument("--quiet", action="store_true", help="no progress bar, print only the file path")

    i = sub.add_parser("info", help="print the level table of a run file")
    i.add_argument("file")

    f = sub.add_parser("flow", help="RG-flow summary of run files (fixed point, eigenvalues, exponents)")
    f.add_argument("files", nargs="+")
    f.add_argument("--out", help="write the analysis as netCDF")
    return p


def config_from_args(a: argparse.Namespace):
    """A :class:`RunConfig` from --config and the flags given (flags win)."""
    from rgnet.config import RunConfig, load_toml
    from rgnet.errors import ConfigError

    cfg = load_toml(a.config) if a.config else RunConfig()
    d = cfg.to_dict()
    if a.task is not None and a.task != d["task"]["name"]:
        d["task"] = {"name": a.task, "params": {}}
    for kv in a.task_param:
        key, sep, value = kv.partition("=")
        if not sep:
            raise ConfigError(f"--task-param {kv!r} must look like KEY=VALUE, e.g. corr_noise_scale=0.5")
        try:
            d["task"]["params"][key] = json.loads(value)
        except json.JSONDecodeError:
            d["task"]["params"][key] = value
    if a.model is not None:
        d["model"]["name"] = a.model
    if a.widths is not None:
        try:
            d["model"]["params"]["widths"] = [int(w) for w in a.widths.split(",")]
        except ValueError:
            raise ConfigError(f"--widths {a.widths!r} must be comma-separated integers, e.g. 100,100") from None
    for flag, section, key in (("levels", "prune", "levels"), ("fraction", "prune", "fraction"),
                               ("scope", "prune", "scope"), ("output_fraction", "prune", "output_fraction"),
                               ("rewind", "prune", "rewind"), ("target_density", "prune", "target_density"),
                               ("steps", "train", "steps"), ("batch_size", "train", "batch_size"),
                               ("optimizer", "train", "optimizer"), ("lr", "train", "lr"),
                               ("eval_every", "train", "eval_every")):
        v = getattr(a, flag)
        if v is not None:
            d[section][key] = v
    for flag in ("prune_first", "prune_output"):
        if getattr(a, flag) is not None:
            d["model"][flag] = getattr(a, flag)
    if a.seed is not None:
        d["seed"] = a.seed
    if a.no_tensors:
        d["store"]["tensors"] = False
    return RunConfig.from_dict(d)


def _record(a) -> int:
    from rgnet.imp.driver import record
    from rgnet.report import level_table

    cfg = config_from_args(a)
    log = None if a.quiet else (lambda s: print(s, file=sys.stderr))
    path = record(cfg, a.out, device=a.device, data_root=a.data_root, progress=False if a.quiet else None,
                  threads=a.threads, log=log)
    print(path)
    if not a.quiet:
        print(level_table(path))
    return 0


def _info(a) -> int:
    from rgnet.report import level_table

    print(level_table(a.file))
    return 0


def _flow(a) -> int:
    from rgnet import rg
    from rgnet.store import open_run

    report = rg.flow_report([open_run(f) for f in a.files])
    print(rg.format_flow_report(report))
    if a.out:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        report.to_netcdf(out, engine="h5netcdf")
        print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    try:
        return {"record": _record, "info": _info, "flow": _flow}[a.command](a)
    except RgnetError as e:
        print(f"rgnet: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # unwritable folder, full disk: the file system's own sentence
        where = f" ({e.filename})" if e.filename else ""
        print(f"rgnet: error: {e.strerror or e}{where}; check the path and free space", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rgnet: interrupted; completed levels are saved — run the same command again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
