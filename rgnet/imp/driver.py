"""The IMP driver: train -> prune -> rewind -> retrain, one level at a time, each level committed to the store.

``record(cfg, out)`` creates the run file or resumes it after its last complete level; because every random
stream derives from (seed, level, branch) and the rewind point and next masks are stored, a resumed run
gives the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from rgnet.config import RunConfig, nondefault
from rgnet.errors import ConfigError, StoreError
from rgnet.imp.masks import Masker, density, full_masks, magnitude_prune
from rgnet.imp.seeds import generator, stream_seed
from rgnet.imp.train import DeviceData, eval_iterations, train_level
from rgnet.models import build_model, output_layer, prunable_layers
from rgnet.store.schema import METRIC_NAMES
from rgnet.store.writer import check_run_file, commit_level, create_run, exclusive, read_resume_state, root_attrs
from rgnet.tasks import Task, load_task, resolve_params
from rgnet.theory import level_theory

TRUNK = "trunk"


def normalise(cfg: RunConfig) -> RunConfig:
    """Fill in the task's default parameters and check every setting; raises :class:`ConfigError`."""
    cfg = dataclasses.replace(cfg, task=dataclasses.replace(cfg.task, params=resolve_params(cfg.task)))
    t, p = cfg.train, cfg.prune
    checks = [
        (0 < p.fraction < 1, f"--fraction must be between 0 and 1 (exclusive), got {p.fraction}"),
        (p.scope in ("global", "layerwise"), f"--scope must be global or layerwise, got {p.scope!r}"),
        (p.levels >= 0, f"--levels must be >= 0, got {p.levels}"),
        (0 <= p.target_density < 1, f"target_density must be in [0, 1), got {p.target_density}"),
        (p.output_fraction is None or 0 <= p.output_fraction < 1,
         f"output_fraction must be in [0, 1), got {p.output_fraction}"),
        (all(0 <= v < 1 for v in p.layer_fractions.values()), "layer_fractions must all be in [0, 1)"),
        (t.steps >= 1, f"--steps must be >= 1, got {t.steps}"),
        (0 <= p.rewind < t.steps, f"--rewind must be an iteration in [0, steps), got {p.rewind} with "
                                  f"steps={t.steps}"),
        (t.batch_size >= 1, f"--batch-size must be >= 1, got {t.batch_size}"),
        (t.lr > 0, f"--lr must be positive, got {t.lr}"),
        (t.eval_every >= 1, f"eval_every must be >= 1, got {t.eval_every}"),
        (t.optimizer in ("adam", "sgd"), f"--optimizer must be adam or sgd, got {t.optimizer!r}"),
        (t.warmup >= 0, f"warmup must be >= 0, got {t.warmup}"),
        (cfg.store.bins >= 2, f"store.bins must be >= 2, got {cfg.store.bins}"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)
    return cfg


def resolve_device(name: str) -> torch.device:
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} is not available on this machine (no CUDA GPU); use --device cpu")
    return dev


def default_path(cfg: RunConfig) -> Path:
    return Path("runs") / f"{cfg.task.name}-{cfg.model.name}-s{cfg.seed}-{cfg.run_id}.h5"


def record(cfg: RunConfig, out: str | Path | None = None, *, device: str = "cpu",
           data_root: str | Path | None = None, progress: bool | None = None, threads: int | None = None,
           log: Callable[[str], None] | None = None) -> Path:
    """Run (or resume) IMP for ``cfg`` and record every level into ``out``; returns the file path.

    ``progress=None`` shows a bar only on a terminal. ``threads``: CPU threads for torch; by default 1 for
    models under a million parameters (their matrices are too small to share, and a busy second core makes
    two threads up to 10x slower), torch's default otherwise. A file at ``out`` with another config, or
    that is not an rgnet file, is never modified (:class:`StoreError`).
    """
    cfg = normalise(cfg)
    dev = resolve_device(device)
    path = Path(out) if out is not None else default_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(path):
        return _record(cfg, path, dev, data_root, progress, threads, log)


def _record(cfg, path, dev, data_root, progress, threads, log) -> Path:
    resume = attrs = None
    if path.exists():
        attrs = _check_resumable(path, cfg)
        resume = read_resume_state(path)
        if _finished(cfg, resume["levels"], resume["density"]):
            if log:
                log(f"{path} is complete ({resume['levels']} levels); nothing to do")
            return path
    task = load_checked_task(cfg, path, attrs, data_root)
    model, layers, output = build(cfg, task, dev)
    data = DeviceData.from_task(task, dev)
    if resume is None:
        versions = {"rgnet": _version(), "torch": torch.__version__, "numpy": np.__version__,
                    "python": platform.python_version()}
        create_run(path, root_attrs(cfg.run_id, cfg.to_json(), task.summary(), versions), **layout_of(cfg, layers))
    elif resume["levels"] and log:
        log(f"resuming {path} after level {resume['levels'] - 1}")
    with torch_threads(model, threads):
        _run_levels(cfg, path, model, layers, output, data, dev, resume, progress)
    return path


def load_checked_task(cfg: RunConfig, path: Path, attrs: dict | None, data_root) -> Task:
    """The run's data; :class:`StoreError` if ``attrs`` (of an existing file) say it was recorded on other data."""
    task = load_task(cfg.task, data_root)
    if attrs is not None:
        stored = json.loads(attrs["task"]).get("fingerprint")
        if stored != task.fingerprint():
            raise StoreError(f"{str(path)!r} was recorded on other data than {cfg.task.name!r} gives now "
                             f"(fingerprint {stored} vs {task.fingerprint()}; a changed data file or generator "
                             "version?); it was left untouched — restore the data or pass another --out")
    return task


def build(cfg: RunConfig, task: Task, dev: torch.device, stream: str = "init"):
    """The run's model (initialised from the seeded ``stream``) on ``dev``, its prunable layers and output layer."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(stream_seed(cfg.seed, stream))
        model = build_model(cfg.model, task.in_shape, task.n_classes)
    model.to(dev)
    return model, prunable_layers(model, cfg.model), output_layer(model)


def layout_of(cfg: RunConfig, layers: dict) -> dict:
    """Arguments of :func:`create_layout` for this run."""
    return dict(layers=list(layers), iterations=eval_iterations(cfg.train), bins=cfg.store.bins,
                levels=cfg.prune.levels + 1, tensors=cfg.store.tensors)


@contextlib.contextmanager
def torch_threads(model: torch.nn.Module, threads: int | None):
    """CPU threads for training: by default 1 for models under a million parameters."""
    if threads is None:
        small = sum(p.numel() for p in model.parameters()) < 1_000_000
        threads = 1 if small else torch.get_num_threads()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _check_resumable(path: Path, cfg: RunConfig) -> dict:
    """The file's root attributes, if it is an rgnet file of this very config; else :class:`StoreError`."""
    attrs = check_run_file(path)
    if nondefault(json.loads(attrs["config"])) != nondefault(cfg.to_dict()):  # fields added since are defaults
        theirs, ours = _flat(json.loads(attrs["config"])), _flat(cfg.to_dict())
        diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        raise StoreError(f"{str(path)!r} holds run {attrs['run_id']} whose config differs in "
                         f"{', '.join(diff[:6])}; it was left untouched — pass another --out or the same config")
    return attrs


def _run_levels(cfg, path, model, layers, output, data, dev, resume: dict | None, progress) -> None:
    p, k = cfg.prune, cfg.prune.rewind
    init = numpy_state(model)
    start_level = resume["levels"] if resume else 0
    if start_level == 0:
        masks, rewind = full_masks(layers), None
    else:
        rewind = resume["rewind"]
        masks = {n: torch.from_numpy(m.astype(bool)).to(dev) for n, m in resume["next_mask"].items()}
    with LevelBar((p.levels + 1 - start_level) * cfg.train.steps, progress) as bar:
        for level in range(start_level, p.levels + 1):
            if rewind is not None:
                model.load_state_dict({n: torch.from_numpy(a) for n, a in rewind.items()})
            dens, start = density(masks), (0 if level == 0 else k)
            t0 = time.perf_counter()
            result, captured = train_level(model, Masker(layers, masks), data, cfg.train,
                                           generator(cfg.seed, "data", level, TRUNK), start=start,
                                           capture_at=(k if level == 0 else None),
                                           on_eval=bar.level(level, start, dens))
            seconds = time.perf_counter() - t0
            trained = numpy_state(model)
            if level == 0:
                rewind = {n: v.cpu().numpy() for n, v in captured.items()}
            next_masks = magnitude_prune({n: w.detach() for n, w in layers.items()}, masks, output, p)
            rec = describe_level(cfg, result, seconds, masks, trained, rewind, next_masks)
            if level == 0:
                rec.update(init=init, rewind=rewind)
            commit_level(path, level, rec)
            masks = next_masks
            if _finished(cfg, level + 1, dens):
                break


class LevelBar:
    """A tqdm bar over the iterations of several levels; ``level()`` gives the ``on_eval`` callback of one."""

    def __init__(self, total: int, progress: bool | None):
        self.bar = tqdm(total=total, unit="it", dynamic_ncols=True, file=sys.stderr,
                        disable=(None if progress is None else not progress))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()

    def level(self, level: int, start: int, dens: float, label: str = "level"):
        self.bar.set_description(f"{label} {level}")
        self.bar.update(start)  # pruned levels start at the rewind iteration
        last = [start]

        def on_eval(it, m):
            self.bar.set_postfix(density=f"{dens:.3f}", val_acc=f"{m['val_acc']:.3f}",
                                 test_acc=f"{m['test_acc']:.3f}")
            self.bar.update(it - last[0])
            last[0] = it

        return on_eval


def _finished(cfg: RunConfig, levels_done: int, last_density: float | None) -> bool:
    if levels_done == 0:
        return False
    if levels_done > cfg.prune.levels:
        return True
    return last_density is not None and cfg.prune.target_density > 0 and last_density <= cfg.prune.target_density


def describe_level(cfg: RunConfig, result, seconds: float, masks, trained: dict, rewind: dict,
                   next_masks=None) -> dict:
    """Everything the store keeps of one trained level: metrics, curves, masks, tensors and the theory."""
    at = result.at_stop()
    rec: dict = {"density": density(masks), "stop_iteration": result.stop_iteration, "train_seconds": seconds}
    for name in METRIC_NAMES:
        rec[name] = at[name]
        rec[f"{name}_final"] = float(result.curves[name][-1])
        rec[f"curve_{name}"] = result.curves[name]
    rec["mask"] = {n: m.cpu().numpy().astype(np.uint8) for n, m in masks.items()}
    if next_masks is not None:
        rec["next_mask"] = {n: m.cpu().numpy().astype(np.uint8) for n, m in next_masks.items()}
    rec["trained"] = trained if cfg.store.tensors else {}
    rec.update(level_theory({n: trained[f"{n}.weight"] for n in masks}, {n: rewind[f"{n}.weight"] for n in masks},
                            rec["mask"], cfg.store.bins))
    return rec


def numpy_state(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("rgnet")
    except Exception:
        return "0+unknown"
