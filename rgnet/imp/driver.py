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

from rgnet.config import RunConfig, nondefault, validate
from rgnet.errors import ConfigError, DivergedError, StoreError
from rgnet.imp.masks import Masker, density, full_masks, magnitude_prune
from rgnet.imp.seeds import stream_seed
from rgnet.imp.train import DeviceData, eval_iterations, train_level
from rgnet.models import build_model, check_params, output_layer, prunable_layers
from rgnet.store.schema import METRIC_NAMES
from rgnet.store.writer import check_run_file, commit_level, create_run, exclusive, read_resume_state, root_attrs
from rgnet.tasks import Task, load_task, resolve_params
from rgnet.theory import level_theory

TRUNK = "trunk"


def normalise(cfg: RunConfig) -> RunConfig:
    """Fill in the task's default parameters and check every setting; raises :class:`ConfigError`."""
    validate(cfg)
    check_params(cfg.model)
    return dataclasses.replace(cfg, task=dataclasses.replace(cfg.task, params=resolve_params(cfg.task)))


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
    two threads up to 10x slower), torch's default otherwise. Every check (settings, data, model) runs before
    anything is written; a file at ``out`` with another config, or that is not an rgnet file, is never
    modified (:class:`StoreError`). A level whose training diverges is recorded as such and ends the run
    (:class:`DivergedError`).
    """
    cfg = normalise(cfg)
    dev = resolve_device(device)
    check_threads(threads)
    path = Path(out) if out is not None else default_path(cfg)
    attrs = _check_resumable(path, cfg) if path.exists() else None
    if attrs is not None and _complete(cfg, path, log):
        return path
    task = load_checked_task(cfg, path, attrs, data_root)
    model, layers, output = build(cfg, task, dev)
    path.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(path):
        if attrs is None and path.exists():  # another process created it since we looked
            attrs = _check_resumable(path, cfg)
            load_checked_task(cfg, path, attrs, data_root)
        if attrs is not None and _complete(cfg, path, log):
            return path
        resume = read_resume_state(path) if attrs is not None else None
        if resume is None:
            versions = {"rgnet": _version(), "torch": torch.__version__, "numpy": np.__version__,
                        "python": platform.python_version()}
            create_run(path, root_attrs(cfg.run_id, cfg.to_json(), task.summary(), versions),
                       **layout_of(cfg, layers))
        elif resume["levels"] and log:
            log(f"resuming {path} after level {resume['levels'] - 1}")
        data = DeviceData.from_task(task, dev)
        with torch_threads(model, threads):
            _run_levels(cfg, path, model, layers, output, data, dev, resume, progress)
    return path


def _complete(cfg: RunConfig, path: Path, log) -> bool:
    """Whether the run in ``path`` needs no more levels; :class:`DivergedError` if it ended by diverging."""
    state = read_resume_state(path)
    if state["diverged"]:
        raise DivergedError(_diverged_message(path, state["levels"] - 1, state["diverged_iteration"]))
    if _finished(cfg, state["levels"], state["density"]):
        if log:
            log(f"{path} is complete ({state['levels']} levels); nothing to do")
        return True
    return False


def _diverged_message(path: Path, level: int, iteration: int) -> str:
    return (f"training diverged at level {level}, iteration {iteration} (non-finite loss or weights) in "
            f"{str(path)!r}; the level is recorded as diverged and IMP stopped there — lower --lr (or use "
            "warmup) and record into another --out")


def check_threads(threads: int | None) -> None:
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"--threads must be a positive integer, got {threads!r}; omit it for the default")


def load_checked_task(cfg: RunConfig, path: Path, attrs: dict | None, data_root) -> Task:
    """The run's data; :class:`StoreError` if ``attrs`` (of an existing file) say it was recorded on other data,
    :class:`ConfigError` if the settings do not fit the data (a batch larger than the training set)."""
    try:
        task = load_task(cfg.task, data_root)
    except ConfigError as e:
        if attrs is None:
            raise
        raise StoreError(f"{str(path)!r} was recorded with task settings this rgnet does not accept ({e}); it was "
                         "left untouched — extend it with the rgnet version that recorded it, or record anew") from None
    n_train = len(task.y_train)
    if cfg.train.batch_size > n_train:
        raise ConfigError(f"train.batch_size (--batch-size) {cfg.train.batch_size} is larger than the training set "
                          f"of {cfg.task.name!r} ({n_train} examples); lower it")
    if attrs is not None:
        stored = json.loads(attrs.get("task", "{}")).get("fingerprint")
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
                                           stream_seed(cfg.seed, "data", level, TRUNK), start=start,
                                           capture_at=(k if level == 0 else None),
                                           on_eval=bar.level(level, start, dens))
            seconds = time.perf_counter() - t0
            trained = numpy_state(model)
            diverged = result.diverged_at is not None
            if level == 0:
                # a net that diverged before the rewind iteration has no rewind point: IMP ends at level 0 anyway
                rewind = {n: v.cpu().numpy() for n, v in captured.items()} if captured is not None else init
            # no next level after a divergence: its masks would rank non-finite weights
            next_masks = masks if diverged else magnitude_prune({n: w.detach() for n, w in layers.items()}, masks,
                                                                 output, p)
            rec = describe_level(cfg, result, seconds, masks, trained, rewind, next_masks)
            if level == 0:
                rec.update(init=init, rewind=rewind)
            commit_level(path, level, rec)
            if diverged:
                raise DivergedError(_diverged_message(path, level, result.diverged_at))
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
    diverged = result.diverged_at is not None
    rec: dict = {"density": density(masks), "stop_iteration": result.stop_iteration, "train_seconds": seconds,
                 "diverged": int(diverged), "diverged_iteration": result.diverged_at if diverged else -1}
    for name in METRIC_NAMES:
        rec[name] = at[name]
        rec[f"{name}_final"] = float(result.curves[name][-1])
        rec[f"curve_{name}"] = result.curves[name]
    rec["mask"] = {n: m.cpu().numpy().astype(np.uint8) for n, m in masks.items()}
    if next_masks is not None:
        rec["next_mask"] = {n: m.cpu().numpy().astype(np.uint8) for n, m in next_masks.items()}
    rec["trained"] = trained if cfg.store.tensors else {}
    weights = {n: trained[f"{n}.weight"] for n in masks}
    if diverged:  # counts and densities from the masks; no statistics of non-finite weights
        weights = {n: np.zeros_like(w) for n, w in weights.items()}
    theory = level_theory(weights, {n: rewind[f"{n}.weight"] for n in masks}, rec["mask"], cfg.store.bins)
    if diverged:
        for name in ("w_qf", "w_quantile", "absw_quantile", "w_mean", "w_std", "w_skew", "w_kurtosis", "w_absmean"):
            theory[name] = np.full_like(theory[name], np.nan, dtype=float)
        theory["hist"] = np.zeros_like(theory["hist"])
    rec.update(theory)
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
