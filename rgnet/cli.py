"""The ``rgnet`` command: ``record`` IMP runs, ``baselines`` and ``transfer`` branches, ``ticket`` export,
``tickets`` verdicts, ``info`` on a file, ``flow`` analysis, ``sweep`` (a spec on dask.distributed).

Errors caused by the user's input print one sentence and exit with code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import warnings

from rgnet.align import ALIGN_MODES, MIN_CONFIDENCE
from rgnet.config import OPTIMIZERS, SCOPES, STOP_RULES, RunConfig
from rgnet.errors import RgnetError, RgnetWarning
from rgnet.progress import to_stderr
from rgnet.store.outputs import check_new, write_new
from rgnet.store.provenance import rgnet_version
from rgnet.sweep import sweep
from rgnet.tasks import TASKS
from rgnet.universality import universality
from rgnet.universality.classes import CLASS_METHODS
from rgnet.universality.signatures import SIGNATURES
from rgnet.verdicts import METRICS, RULES, winning_tickets

# Every default shown or used here is the library's own (a dataclass field or a function's keyword), read at
# parse time: a default has one source, and `rgnet --help` shows it.
_CFG = RunConfig().to_dict()


def _default(fn, name: str):
    return inspect.signature(fn).parameters[name].default


def _cfg(section: str, key: str) -> str:
    return f" (default {_CFG[section][key]})"


def _one_of(values) -> str:
    return ", ".join(values)


def _choices(values) -> str:
    """A metavar that lists the valid values as argparse shows ``choices``; the library checks the value itself, with
    the same sentence for a flag and a config file."""
    return "{" + ",".join(values) + "}"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse would print the whole usage first)
        self.exit(2, f"rgnet: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rgnet", description="Lottery-ticket experiments as renormalisation-group flows.")
    p.add_argument("--version", action="version", version=f"rgnet {rgnet_version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("record", help="run IMP and record every level into an HDF5 file (resumable)",
                       description="Run iterative magnitude pruning and record each level as a theory. With no "
                                   "arguments: MNIST-1D, an MLP, 12 levels at p = 0.2. Re-running with the same "
                                   "config and --out resumes after the last complete level.")
    r.add_argument("--config", metavar="TOML", help="run config file; flags given as well override it")
    r.add_argument("--task", help=f"task name: {_one_of(sorted(TASKS))}" + _cfg("task", "name"))
    r.add_argument("--task-param", action="append", default=[], metavar="KEY=VALUE",
                   help="task parameter, repeatable (e.g. corr_noise_scale=0.5); VALUE is parsed as JSON")
    r.add_argument("--model", help="model name (mlp, lenet_300_100, cnn1d, conv2, conv4, conv6, resnet20, ...)"
                   + _cfg("model", "name"))
    r.add_argument("--widths", help="hidden widths of mlp, comma-separated (e.g. 100,100)")
    r.add_argument("--levels", type=int, help="IMP levels after the dense one" + _cfg("prune", "levels"))
    r.add_argument("--fraction", type=float, help="fraction of surviving weights pruned per level"
                   + _cfg("prune", "fraction"))
    r.add_argument("--scope", metavar=_choices(SCOPES), help="pruning scope" + _cfg("prune", "scope"))
    r.add_argument("--output-fraction", type=float, help="pruning fraction of the output layer")
    r.add_argument("--prune-first", action=argparse.BooleanOptionalAction, default=None,
                   help="prune the first layer (default: the model's own choice)")
    r.add_argument("--prune-output", action=argparse.BooleanOptionalAction, default=None,
                   help="prune the output layer (default: the model's own choice)")
    r.add_argument("--rewind", type=int, help="rewind iteration k (0 = initialisation)" + _cfg("prune", "rewind"))
    r.add_argument("--target-density", type=float, help="stop once the density is at or below this")
    r.add_argument("--seed", type=int, help=f"run seed (default {_CFG['seed']})")
    r.add_argument("--seeds", help="record several seeds, e.g. 0-15 or 0,2,5-7: one file per seed, trained "
                                   "together as one stacked model (--out may contain {seed})")
    r.add_argument("--stack", type=int, help="with --seeds: at most this many runs trained at once (default all)")
    r.add_argument("--steps", type=int, help="training iterations per level" + _cfg("train", "steps"))
    r.add_argument("--batch-size", type=int, help="examples per step" + _cfg("train", "batch_size"))
    r.add_argument("--optimizer", metavar=_choices(OPTIMIZERS), help="optimizer" + _cfg("train", "optimizer"))
    r.add_argument("--lr", type=float, help="learning rate" + _cfg("train", "lr"))
    r.add_argument("--eval-every", type=int, help="evaluate every E iterations" + _cfg("train", "eval_every"))
    r.add_argument("--early-stop", help="which evaluation is the trained network: "
                   + _one_of(f"{k} ({v})" for k, v in STOP_RULES.items()) + _cfg("train", "early_stop"))
    _training_flags(r)
    r.add_argument("--out", help="output file (default runs/<task>-<model>-s<seed>-<run_id>.h5)")

    b = sub.add_parser("baselines", help="train lottery-ticket baselines as branches of a run file (resumable)",
                       description="Train baselines next to a recorded run, level by level, into branches/<name> "
                                   "of the same file: reinit (the ticket's mask, fresh weights), "
                                   "random_prune_layerwise / random_prune_global (random masks with the same "
                                   "per-layer / total counts), rewind (the other rewind point).")
    b.add_argument("file", help="run file written by `rgnet record`")
    b.add_argument("--levels", help="levels to train, e.g. 1-12 or 2,4,6 (default: every pruned level)")
    b.add_argument("--kinds", help="comma-separated baselines (default: all of reinit, random_prune_layerwise, "
                                   "random_prune_global, rewind)")
    b.add_argument("--stack", type=int, help="at most this many baseline levels trained at once as one stacked "
                                             "model (default all)")
    b.add_argument("--rewind-to", type=int, help="rewind iteration of the rewind baseline (default: 0 if the run "
                                                 "rewound later, else 3%% of the training steps)")
    _training_flags(b)

    t = sub.add_parser("transfer", help="train a source run's winning tickets on a target task (resumable)",
                       description="Take the ticket (mask + rewound weights) of each level of SOURCE, train it with "
                                   "the target run's settings and store it as branches/transfer_<source run_id> "
                                   "of the target file. The target is an existing run file (--target) or a task "
                                   "(--task), recorded first with the source's config if it does not exist yet.")
    t.add_argument("source", help="source run file, or a ticket file from `rgnet ticket`")
    t.add_argument("--target", help="target run file (default with --task: runs/<task>-...h5)")
    t.add_argument("--task", help="target task name; the target run uses the source's model and settings")
    t.add_argument("--task-param", action="append", default=[], metavar="KEY=VALUE",
                   help="target task parameter, repeatable; VALUE is parsed as JSON")
    t.add_argument("--levels", help="source levels to transfer, e.g. 1-12 (default: all pruned levels)")
    t.add_argument("--stack", type=int, help="at most this many levels trained at once (default all)")
    t.add_argument("--output-layer", default="pruned", help="when the class count differs: pruned (at the "
                                                              "source's output density, default) or dense")
    t.add_argument("--align", default=ALIGN_MODES[0], help="transfer up to symmetry (MLPs): none (default), inputs "
                                                           "(permute input features, estimated from the two tasks' "
                                                           "data) or inputs+units (also match hidden units to the "
                                                           "target's tickets); a branch of its own")
    t.add_argument("--min-confidence", type=float, default=MIN_CONFIDENCE,
                   help="refuse --align when the input permutation's held-out confidence is below this "
                        f"(default {MIN_CONFIDENCE:g}; 0 aligns anyway)")
    _training_flags(t)

    k = sub.add_parser("ticket", help="export the winning ticket of one level (mask + rewind weights)",
                       description="Write the ticket of one IMP level of a run file — the mask that level trained "
                                   "with, the rewound weights and their provenance — as a file of its own, which "
                                   "`rgnet transfer` takes as its source.")
    k.add_argument("file", help="run file")
    k.add_argument("--level", type=int, required=True, help="IMP level whose ticket to export")
    k.add_argument("--out", required=True, help="ticket file to write (a new file)")
    k.add_argument("--overwrite", action="store_true", help="replace an existing ticket file at --out (never a run "
                                                            "file, a sweep index or anything else)")

    w = sub.add_parser("tickets", help="winning tickets, matching verdicts and the transfer matrix of run files",
                       description="Group the run files by experiment (task) and judge every level of every arm "
                                   "(the IMP trunk and its baselines) against the dense network with a verdict rule "
                                   "(matching, not, undecided): the winning tickets. Where the files hold transfer "
                                   "branches, also the transfer matrix: each transferred ticket against the target's "
                                   "own ticket of the same seed and level, with intervals.")
    w.add_argument("files", nargs="+")
    _labels_flag(w)
    w.add_argument("--metric", default=_default(winning_tickets, "metric"), metavar=_choices(METRICS),
                   help="accuracy variable (default %(default)s: at the early-stop iteration, as Frankle & Carbin; "
                        "_final: at the end of training)")
    w.add_argument("--rule", default=_default(winning_tickets, "rule"), metavar=_choices(RULES),
                   help="verdict rule (default %(default)s)")
    w.add_argument("--tolerance", type=float, help="one_dense_std: matching tolerance when there is one seed "
                                                   f"(default {RULES['one_dense_std'].params['tolerance']} = 1 point)")
    w.add_argument("--margin", type=float, help="noninferior: the margin, an accuracy difference (default "
                                                f"{RULES['noninferior'].params['margin']} = 2 points)")
    w.add_argument("--alpha", type=float, help="noninferior: one-sided level of each t bound (default "
                                               f"{RULES['noninferior'].params['alpha']})")
    w.add_argument("--out", help="write the verdicts (and the transfer matrix, if any) as netCDF (a new file)")
    w.add_argument("--overwrite", action="store_true", help="replace an existing --out (never a run file or input)")

    i = sub.add_parser("info", help="print the level table of a run file",
                       description="Print a run file's levels (density, accuracies, early-stop iteration), its "
                                   "branches, and the machine that recorded it (CPU, torch and its BLAS, threads, "
                                   "device) with any other machine that committed levels later.")
    i.add_argument("file")
    i.add_argument("--check", action="store_true", help="also read every variable back and verify its checksum "
                                                        "(exit 3 if any is damaged)")

    u = sub.add_parser("upgrade", help="convert run files to the current schema, in place (atomic)",
                       description="Convert run files of an older schema to the current one, in place: the new file "
                                   "replaces the old one by an atomic rename, so a kill leaves one or the other. A "
                                   "file already current is left untouched, with one line saying so.")
    u.add_argument("files", nargs="+")

    f = sub.add_parser("flow", help="RG-flow summary of run files (fixed point, eigenvalues, exponents)",
                       description="Read the IMP levels of each run file as an RG flow of theories (one level = "
                                   "one RG step) and summarise it per run: the fixed-point level, the spectrum of "
                                   "the linearised map (eigenvalues, exponents y = ln|lambda| / ln b) and the W1 flow "
                                   "per layer.")
    f.add_argument("files", nargs="+")
    f.add_argument("--out", help="write the analysis as netCDF (a new file)")
    f.add_argument("--overwrite", action="store_true", help="replace an existing --out (never a run file or input)")

    u = sub.add_parser("universality", help="universality classes of the IMP flows, and how well they predict "
                                            "which tickets transfer (scored next to baselines)",
                       description="Compute signatures of every run's IMP flow, test which tasks are "
                                   "indistinguishable (permutation test over seeds), form classes, and score the "
                                   "predicted transfers against the measured transfer matrix.")
    u.add_argument("files", nargs="+", help="run files (at least 2 seeds per task)")
    _labels_flag(u)
    u.add_argument("--transfer", help="netCDF file with the measured transfer matrix (`rgnet tickets --out`); "
                                      "default: computed from the files' transfer branches")
    u.add_argument("--signature", action="append", metavar="NAME",
                   help=f"signature to use, repeatable (default: all the files allow): {_one_of(SIGNATURES)}")
    u.add_argument("--alpha", type=float, default=_default(universality, "alpha"),
                   help="level of the same-class test (default %(default)s)")
    u.add_argument("--classes", default=_default(universality, "class_method"), metavar=_choices(CLASS_METHODS),
                   help="how classes are formed (default %(default)s)")
    u.add_argument("--n-boot", type=int, default=_default(universality, "n_boot"),
                   help="seed bootstraps (default %(default)s)")
    u.add_argument("--permute", default=_default(universality, "permute"),
                   help="same-class test: exchange task labels within_seed (runs of one seed share their "
                        "initialisation across tasks) or between any runs (default %(default)s)")
    u.add_argument("--signature-seeds", metavar="SEEDS",
                   help="out of sample: signatures from the runs of these seeds (e.g. 0-2), the measured transfer "
                        "from the others")
    u.add_argument("--no-baselines", action="store_true", help="score only the signatures")
    u.add_argument("--seed", type=int, default=_default(universality, "seed"),
                   help="seed of the bootstraps and random permutations (default %(default)s)")
    u.add_argument("--out", help="write the classes and scores as netCDF (a new file)")
    u.add_argument("--overwrite", action="store_true", help="replace an existing --out (never a run file or input)")
    u.add_argument("--quiet", action="store_true", help="no progress lines (each stage and its time, on stderr)")
    _sweep_parser(sub)
    return p


def _sweep_parser(sub) -> None:
    s = sub.add_parser("sweep", help="run a sweep spec (runs, baselines, transfers) on dask.distributed; re-running "
                                     "does only what is missing",
                       description="Expand a sweep spec (TOML: base run config, tasks/models/grid/seeds, baselines, "
                                   "transfers) into runs named by run_id, plan them as a task graph (trunks, then "
                                   "baselines, then transfers; one writer per file at a time) and run it on a "
                                   "LocalCluster (one single-threaded worker process per core), on an existing dask "
                                   "cluster (--scheduler), or in this process (--sequential). Writes DIR/index.nc.")
    s.add_argument("spec", help="sweep spec (TOML); see scripts/transfer_family.toml")
    s.add_argument("--dir", required=True, help="folder of the sweep's run files and index.nc")
    s.add_argument("--scheduler", metavar="ADDRESS", help="use the dask cluster of this scheduler (tcp://HOST:PORT); "
                                                          "its workers must see --dir at the same path")
    s.add_argument("--workers", type=int, help="workers of the local cluster (default: one per CPU core)")
    s.add_argument("--host", default=_default(sweep, "host"), help="interface the local scheduler listens on "
                                                                   "(default %(default)s: this machine only)")
    s.add_argument("--dashboard", default=_default(sweep, "dashboard"),
                   help="address of the local dashboard (default %(default)s; 'none' for no dashboard)")
    s.add_argument("--sequential", action="store_true", help="run every unit here, one after another, without dask")
    s.add_argument("--stack", type=int, default=_default(sweep, "stack_size"),
                   help="units per worker call: trunks or baselines of one model, or the transfers into one file "
                        "(default %(default)s)")
    s.add_argument("--retries", type=int, default=_default(sweep, "retries"),
                   help="re-runs of a unit that raised an unexpected error (default %(default)s; a killed worker's "
                        "unit is re-run anyway)")
    s.add_argument("--lock-wait", type=float, default=_default(sweep, "lock_wait"),
                   help="seconds a unit waits for a run file held by another process (default %(default)s)")
    s.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    s.add_argument("--quiet", action="store_true", help="no progress bar or messages")


def _training_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-tensors", action="store_true", help="do not store trained weights of every level (a "
                                                             "branch then keeps no tensors at all, only summaries)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--threads", type=int, help="CPU threads (default: 1 for small models)")
    p.add_argument("--data-root", help="folder with image datasets (default $RGNET_DATA)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _task_params(pairs: list[str]) -> dict:
    from rgnet.errors import ConfigError

    out = {}
    for kv in pairs:
        key, sep, value = kv.partition("=")
        if not sep:
            raise ConfigError(f"--task-param {kv!r} must look like KEY=VALUE, e.g. corr_noise_scale=0.5")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def config_from_args(a: argparse.Namespace):
    """A :class:`RunConfig` from --config and the flags given (flags win)."""
    from rgnet.config import load_toml
    from rgnet.errors import ConfigError

    cfg = load_toml(a.config) if a.config else RunConfig()
    d = cfg.to_dict()
    if a.task is not None and a.task != d["task"]["name"]:
        d["task"] = {"name": a.task, "params": {}}
    d["task"]["params"].update(_task_params(a.task_param))
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
                               ("eval_every", "train", "eval_every"), ("early_stop", "train", "early_stop")):
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
    from rgnet.errors import ConfigError
    from rgnet.imp.driver import record_many
    from rgnet.imp.names import parse_levels
    from rgnet.info import level_table

    cfg = config_from_args(a)
    if a.seeds is None:
        if a.stack is not None:
            raise ConfigError("--stack caps how many of --seeds train at once; give --seeds too (e.g. --seeds 0-15)")
        cfgs, outs = [cfg], [a.out]
    else:
        if a.seed is not None:
            raise ConfigError("give either --seed or --seeds, not both")
        seeds = parse_levels(a.seeds, "--seeds")
        if a.out is not None and len(seeds) > 1 and "{seed}" not in a.out:
            raise ConfigError(f"--out {a.out!r} would hold every seed; put {{seed}} in it (e.g. runs/s{{seed}}.h5) "
                              "or leave it out for the default names")
        cfgs = [cfg.replace(seed=s) for s in seeds]
        outs = [None if a.out is None else a.out.replace("{seed}", str(s)) for s in seeds]
    paths = record_many(cfgs, outs, stack=a.stack, device=a.device, data_root=a.data_root,
                        progress=False if a.quiet else None, threads=a.threads, log=_log(a))
    for path in paths:
        print(path)
        if not a.quiet:
            print(level_table(path))
    return 0


def _log(a):
    return None if a.quiet else to_stderr


def _baselines(a) -> int:
    from rgnet.imp.branches import run_baselines
    from rgnet.imp.names import parse_levels
    from rgnet.verdicts import format_tickets

    kinds = tuple(x.strip() for x in a.kinds.split(",")) if a.kinds else None
    groups = run_baselines(a.file, **({"kinds": kinds} if kinds else {}), levels=parse_levels(a.levels),
                           rewind_to=a.rewind_to, tensors=False if a.no_tensors else None, device=a.device,
                           data_root=a.data_root, progress=False if a.quiet else None, threads=a.threads, log=_log(a),
                           stack=a.stack)
    print("\n".join(f"{a.file}:{g}" for g in groups))
    if not a.quiet:
        print(format_tickets(winning_tickets([a.file])))
    return 0


def _transfer(a) -> int:
    from rgnet.align import check_align
    from rgnet.errors import ConfigError
    from rgnet.imp.driver import default_path, record
    from rgnet.imp.names import parse_levels
    from rgnet.imp.transfer import check_identifiable, check_output_mode, describe_alignment, target_config, transfer
    from rgnet.verdicts import format_transfer_matrix, transfer_matrix

    if a.task is None and a.target is None:
        raise ConfigError("say where to transfer: --target RUN_FILE, or --task NAME [--task-param K=V ...]")
    check_output_mode(a.output_layer)  # before a target run is recorded
    if a.task is None and a.task_param:
        raise ConfigError("--task-param needs --task (the target file already fixes its task)")
    check_align(a.align)  # before a target run is recorded
    target = a.target
    if a.task is not None:
        cfg = target_config(a.source, a.task, _task_params(a.task_param))
        check_align(a.align, cfg.model.name)
        if a.align != "none" and a.min_confidence > 0:
            check_identifiable(a.source, cfg, a.min_confidence, a.data_root)
        target = target or default_path(cfg)
        if not a.quiet:
            print(f"target run: {target} (recording it first if needed)", file=sys.stderr)
        record(cfg, target, device=a.device, data_root=a.data_root, progress=False if a.quiet else None,
               threads=a.threads, log=_log(a))
    group = transfer(a.source, target, parse_levels(a.levels), output=a.output_layer, align=a.align,
                     min_confidence=a.min_confidence,
                     tensors=False if a.no_tensors else None, device=a.device, data_root=a.data_root,
                     progress=False if a.quiet else None, threads=a.threads, log=_log(a), stack=a.stack)
    print(f"{target}:{group}")
    if not a.quiet:
        if a.align != "none":
            print(describe_alignment(target, group))
        print(format_transfer_matrix(transfer_matrix([target])))
    return 0


def _ticket(a) -> int:
    from rgnet.imp.tickets import ticket_from_run, write_ticket

    t = ticket_from_run(a.file, a.level)
    out = write_ticket(t, a.out, overwrite=a.overwrite)
    print(f"{out}: ticket of run {t.run_id}, level {t.level}, density {100 * t.density:.2f} %, "
          f"rewind iteration {t.rewind_iteration}")
    return 0


def _labels_flag(p) -> None:
    p.add_argument("--labels", metavar="SPEC_OR_JSON",
                   help="short task names: a sweep spec (its run labels, e.g. scripts/transfer_family.toml) or "
                        "JSON {\"task key\": \"name\"}; default: a sweep index's labels, else task keys")


def _labels(value: str | None) -> dict[str, str] | None:
    """``--labels``: a sweep spec's run labels, or a JSON object of task key -> name."""
    if value is None:
        return None
    if value.lstrip().startswith("{"):
        from rgnet.errors import ConfigError

        try:
            labels = json.loads(value)
        except json.JSONDecodeError:
            labels = None
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise ConfigError(f"--labels {value!r} is not a JSON object of task key -> name")
        return labels
    from rgnet.sweep import task_labels

    return task_labels(value)


def _tickets(a) -> int:
    from rgnet.verdicts import format_tickets, format_transfer_gaps, format_transfer_matrix, transfer_matrix
    from rgnet.verdicts.tables import TRANSFER_ARM

    if a.out:
        check_new(a.out, "tickets", a.overwrite, a.files)  # refuse before the analysis, not after it
    params = {k: v for k, v in (("margin", a.margin), ("alpha", a.alpha)) if v is not None}
    labels = _labels(a.labels)
    verdicts = winning_tickets(a.files, a.metric, a.tolerance, rule=a.rule, rule_params=params, labels=labels)
    print(format_tickets(verdicts))
    matrix = None
    if any(arm.startswith(TRANSFER_ARM) for arm in verdicts.arm.values):
        matrix = transfer_matrix(a.files, a.metric, a.tolerance, rule=a.rule, rule_params=params, labels=labels)
        print("\n" + format_transfer_matrix(matrix))
        print("\n" + format_transfer_gaps(matrix))
    if a.out:
        from rgnet.store.cf import write_groups

        groups = {"tickets": verdicts, **({"transfer": matrix} if matrix is not None else {})}
        title = "rgnet verdicts: winning tickets (group tickets) and transfer matrix (group transfer)"
        out = write_new(a.out, lambda buf: write_groups(buf, groups, title), command="tickets", overwrite=a.overwrite,
                        inputs=a.files)
        print(f"wrote {out}")
    return 0


def _info(a) -> int:
    from rgnet.info import check_report, level_table, provenance_report

    if a.check:  # first: a damaged file may not even give its table
        ok, text = check_report(a.file)
        if not ok:
            print(text)
            return 3
    print(level_table(a.file))
    print(provenance_report(a.file))
    if a.check:
        print(text)
    return 0


def _upgrade(a) -> int:
    from rgnet.store.upgrade import upgrade
    from rgnet.tasks import task_label

    for f in a.files:
        upgrade(f, task_label, log=print)
    return 0


def _flow(a) -> int:
    from rgnet import rg

    if a.out:
        check_new(a.out, "flow", a.overwrite, a.files)  # refuse before the analysis, not after it
    report = rg.flow_report(a.files)
    print(rg.format_flow_report(report))
    if a.out:
        out = write_new(a.out, lambda buf: report.to_netcdf(buf, engine="h5netcdf"), command="flow",
                        overwrite=a.overwrite, inputs=a.files)
        print(f"wrote {out}")
    return 0


def _universality(a) -> int:
    from rgnet.imp.names import parse_levels
    from rgnet.universality import format_universality

    inputs = [*a.files, *([a.transfer] if a.transfer else [])]
    if a.out:
        check_new(a.out, "universality", a.overwrite, inputs)  # refuse before the analysis, not after it
    ds = universality(a.files, transfer=a.transfer, names=a.signature, labels=_labels(a.labels), alpha=a.alpha,
                      class_method=a.classes,
                      n_boot=a.n_boot, baselines=not a.no_baselines, seed=a.seed, permute=a.permute,
                      signature_seeds=parse_levels(a.signature_seeds, "--signature-seeds"), log=_log(a))
    print(format_universality(ds))
    if a.out:
        out = write_new(a.out, lambda buf: ds.to_netcdf(buf, engine="h5netcdf"), command="universality",
                        overwrite=a.overwrite, inputs=inputs)
        print(f"wrote {out}")
    return 0


def _sweep(a) -> int:
    result = sweep(a.spec, a.dir, scheduler=a.scheduler, workers=a.workers, host=a.host,
                   dashboard=None if a.dashboard == "none" else a.dashboard, sequential=a.sequential,
                   stack_size=a.stack, retries=a.retries, lock_wait=a.lock_wait, dry_run=a.dry_run,
                   progress_bar=False if a.quiet else None, log=_log(a))
    if a.dry_run:
        from rgnet.sweep.plan import progress

        state = progress(result.units)
        for u in result.units:
            done, total = state[u.name]
            mark = "done" if done >= total else f"{done}/{total} levels"
            print(f"{u.name}  [{mark}]" + (f"  after: {', '.join(u.after)}" if u.after else ""))
        return 0
    ran = len(result.results)
    print(f"{ran} units run in {result.seconds:.1f} s, {result.skipped_done} already done, "
          f"{len(result.failed)} not successful; index: {result.index}")
    for r in result.failed:
        print(f"  {r['name']}: {r['status']}: {r['error']}", file=sys.stderr)
    return 3 if result.failed else 0


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, RgnetWarning):  # one line for the user, not a source location
        print(f"rgnet: note: {message}", file=sys.stderr)
    else:
        _default_show(message, category, filename, lineno, file, line)


_default_show = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        commands = {"record": _record, "baselines": _baselines, "transfer": _transfer, "ticket": _ticket,
                    "tickets": _tickets, "info": _info, "flow": _flow, "universality": _universality,
                    "upgrade": _upgrade, "sweep": _sweep}
        return commands[a.command](a)
    except RgnetError as e:
        print(f"rgnet: error: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:  # the reader of our output went away (`rgnet info run.h5 | head -1`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 141
    except OSError as e:  # unwritable folder, full disk: the file system's own sentence
        if "read data" in str(e) or "checksum" in str(e):  # HDF5 could not read a chunk back
            print("rgnet: error: stored data failed its checksum or could not be read back (a damaged file); "
                  "`rgnet info --check FILE` names what is damaged", file=sys.stderr)
            return 3
        where = f" ({e.filename})" if e.filename else ""
        print(f"rgnet: error: {e.strerror or e}{where}; check the path and free space", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rgnet: interrupted; completed levels are saved — run the same command again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
