"""Branches of a recorded run: the lottery-ticket baselines, trained level by level next to the trunk.

A branch reuses the trunk's level axis: level L of ``branches/reinit`` trains the trunk's level-L mask from
fresh weights, level L of ``branches/random_prune_layerwise`` a random mask with the same per-layer counts,
and so on. Each branch is a group with the run layout (so ``xr.open_datatree`` shows trunk and branches side
by side, level by level) plus ``level_done``. Every level is committed atomically; re-running skips the
levels already done, and every random stream derives from (seed, level, branch name).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import torch

from rgnet.config import RunConfig
from rgnet.engine.loop import DeviceData, train_level
from rgnet.engine.masks import Masker, full_masks
from rgnet.engine.seeds import generator, stream_seed
from rgnet.errors import ConfigError, DivergedError, StoreError
from rgnet.imp.driver import (
    LevelBar,
    LevelJob,
    LevelSink,
    build,
    check_stack,
    check_threads,
    commit,
    describe_level,
    layout_of,
    load_checked_task,
    numpy_state,
    resolve_device,
    torch_threads,
    train_levels,
)
from rgnet.imp.names import default_rewind_to, rewind_name
from rgnet.store.reader import read_tensors
from rgnet.store.writer import (
    BRANCHES,
    atomic_update,
    check_current,
    check_run_file,
    create_branch,
    exclusive,
)

BASELINES = ("reinit", "random_prune_layerwise", "random_prune_global", "rewind")

Masks = dict[str, np.ndarray]


@dataclass
class Trunk:
    """A recorded run, loaded for training branches: its config, data, model and stored tensors."""

    path: Path
    cfg: RunConfig
    task: object
    model: torch.nn.Module
    layers: dict[str, torch.nn.Parameter]
    output: str
    data: DeviceData
    init: dict[str, np.ndarray]
    rewind: dict[str, np.ndarray]
    levels: int                  # complete trunk levels
    densities: np.ndarray        # (levels,)
    masks: dict[str, np.ndarray]  # layer -> (levels, *shape) bool: the mask each trunk level trained with

    def mask(self, level: int) -> Masks:
        return {n: m[level] for n, m in self.masks.items()}


def open_trunk(path: str | Path, device: str = "cpu", data_root=None) -> Trunk:
    """Load a run file's trunk for branching; the data must be the data it was recorded on."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"run file {str(path)!r} does not exist; record it first with `rgnet record --out ...`")
    attrs = check_run_file(path)
    check_current(path, attrs)
    cfg = RunConfig.from_json(attrs["config"])
    n = int(attrs["levels_complete"])
    if n == 0:
        raise StoreError(f"{str(path)!r} has no complete level yet; finish recording it first")
    dev = resolve_device(device)
    task = load_checked_task(cfg, path, attrs, data_root)
    model, layers, output = build(cfg, task, dev)
    init, rewind = read_tensors(path, "init"), read_tensors(path, "rewind")
    with h5py.File(path, "r") as f:
        densities = np.asarray(f["density"][:n])
    per_level = [read_tensors(path, "mask", level) for level in range(n)]
    masks = {name: np.stack([m[name] for m in per_level]).astype(bool) for name in layers}
    return Trunk(path, cfg, task, model, layers, output, DeviceData.from_task(task, dev), init, rewind, n,
                 densities, masks)


@dataclass
class Branch:
    """What a branch trains at each level: ``masks(level)`` from ``rewind`` weights, starting at ``start``."""

    name: str
    spec: dict                                 # identity of the branch; a re-run must match it
    start: int                                 # iteration training starts from
    rewind: dict[str, np.ndarray]              # the weights every level starts from (masked at the start)
    masks: Callable[[int], Masks]
    attrs: dict = field(default_factory=dict)  # more group attributes (provenance)
    check: Callable[[int], None] | None = None  # raises if a level cannot be trained; run before any write
    stream: str | None = None                  # names the data-order stream (default: the branch name)


def run_branch(trunk: Trunk, branch: Branch, levels: list[int], *, tensors: bool | None = None,
               progress: bool | None = None, threads: int | None = None,
               log: Callable[[str], None] | None = None) -> str:
    """Train ``branch`` at ``levels`` of ``trunk`` (skipping those already done); returns the group path.

    ``tensors``: store the trained weights of each level (default: as the trunk does).
    """
    return run_branches(trunk, [branch], levels, tensors=tensors, progress=progress, threads=threads, log=log)[0]


def run_branches(trunk: Trunk, branches: list[Branch], levels: list[int], *, tensors: bool | None = None,
                 progress: bool | None = None, threads: int | None = None, log: Callable[[str], None] | None = None,
                 stack: int | None = None, sink: LevelSink | None = None) -> list[str]:
    """Train each of ``branches`` at ``levels`` of ``trunk`` (skipping the levels done), all branch levels as
    stacks of at most ``stack`` runs (default: all) by :func:`rgnet.imp.driver.train_levels`; each level is
    committed to its group as soon as its stack is trained. Returns the group paths; a branch level that
    diverges is recorded as such and reported (:class:`DivergedError`) after the others are trained.
    """
    check_levels(trunk, levels)
    check_threads(threads)
    check_stack(stack)
    for branch in branches:
        for level in levels:
            if branch.check is not None:
                branch.check(level)
    cfg = trunk.cfg if tensors is None else trunk.cfg.replace(store={"tensors": tensors})
    groups = [f"{BRANCHES}/{b.name}" for b in branches]
    diverged: dict[str, list[str]] = {g: [] for g in groups}
    with exclusive(trunk.path):
        todos = []
        for branch, group in zip(branches, groups):
            done = _prepare_group(trunk, branch, cfg)
            todos.append([lv for lv in levels if lv not in done])
            if log:
                log(f"{trunk.path}:{group}: {len(levels) - len(todos[-1])} of {len(levels)} levels already done"
                    if len(todos[-1]) < len(levels) else f"{trunk.path}:{group}: training levels {_span(levels)}")
        n = sum(map(len, todos))
        with torch_threads(trunk.model, threads), LevelBar(n, n * cfg.train.steps, progress, log) as bar:
            report = bar.sink(sink)
            jobs = [_branch_level(trunk, branch, cfg, level, group, diverged[group], report)
                    for branch, group, todo in zip(branches, groups, todos) for level in todo]
            train_levels(jobs, bar, stack)
    failed = [f"training of {trunk.path}:{g} diverged at {', '.join(d)} (non-finite loss or weights); those levels "
              "are recorded as diverged and left out of verdicts — lower --lr" for g, d in diverged.items() if d]
    if failed:
        raise DivergedError("; ".join(failed))
    return groups


def _branch_level(trunk: Trunk, branch: Branch, cfg: RunConfig, level: int, group: str,
                  diverged: list[str], sink: LevelSink | None) -> LevelJob:
    """Level ``level`` of ``branch``: its masks from its rewind weights; finishing commits it to ``group``."""
    masks = {n: torch.from_numpy(m).to(trunk.data.x["train"].device) for n, m in branch.masks(level).items()}

    def finish(t, seconds: float) -> None:
        rec = describe_level(cfg, t.result, seconds, masks, t.trained, branch.rewind)
        rec["rewind"] = branch.rewind
        commit(trunk.path, level, rec, group, sink, trunk.data.x["train"].device)
        if t.result.diverged_at is not None:
            diverged.append(f"level {level} at iteration {t.result.diverged_at}")

    stream = stream_seed(cfg.seed, "data", level, branch.stream or branch.name)
    return LevelJob(trunk.model, cfg.train, branch.rewind, masks, trunk.data, stream, branch.start, None,
                    f"{branch.name} {level}", finish)


def check_levels(trunk: Trunk, levels: list[int]) -> None:
    """:class:`ConfigError` unless ``levels`` is a non-empty list of complete trunk levels."""
    if not levels:
        raise ConfigError(f"nothing to train: {str(trunk.path)!r} has no pruned level to branch from (levels "
                          f"0-{trunk.levels - 1} complete); record more levels first")
    bad = [lv for lv in levels if not 0 <= lv < trunk.levels]
    if bad:
        raise ConfigError(f"levels {bad} are not complete in {str(trunk.path)!r} (it has levels "
                          f"0-{trunk.levels - 1}); pick levels in that range or record more levels first")


def _prepare_group(trunk: Trunk, branch: Branch, cfg: RunConfig) -> set[int]:
    """Create the branch group if needed (or check it is the same branch); the levels it has done."""
    spec = json.dumps(branch.spec, sort_keys=True)
    with h5py.File(trunk.path, "r") as f:
        if f"{BRANCHES}/{branch.name}" in f:
            g = f[BRANCHES][branch.name]
            made = g.attrs["branch"].decode() if isinstance(g.attrs["branch"], bytes) else g.attrs["branch"]
            if made != spec:
                raise StoreError(f"{str(trunk.path)!r} already has a branch {branch.name!r} made with "
                                 f"{made}, not {spec}; it was left untouched")
            return set(np.flatnonzero(np.asarray(g["level_done"][...])).tolist())
    attrs = {"branch": spec, "config": cfg.to_json(), "run_id": trunk.cfg.run_id, **branch.attrs}
    with atomic_update(trunk.path) as f:
        create_branch(f, branch.name, attrs, **layout_of(cfg, trunk.layers))
    return set()


# ---------------------------------------------------------------------------------------------- baselines

def reinit(trunk: Trunk) -> Branch:
    """The trunk's masks with fresh initial weights (same distribution, another stream), trained from 0."""
    fresh = numpy_state(build(trunk.cfg, trunk.task, torch.device("cpu"), stream="reinit")[0])
    return Branch("reinit", {"kind": "reinit"}, 0, fresh, trunk.mask)


def random_prune(trunk: Trunk, scope: str) -> Branch:
    """Random masks with the trunk's per-layer counts (``layerwise``) or its total count (``global``),
    trained from the trunk's rewind point."""
    name = f"random_prune_{scope}"

    def masks(level: int) -> Masks:
        return random_masks(trunk.mask(level), scope, generator(trunk.cfg.seed, "mask", level, name))

    return Branch(name, {"kind": "random_prune", "scope": scope}, trunk.cfg.prune.rewind, trunk.rewind, masks)


def rewind_variant(trunk: Trunk, k: int | None = None) -> Branch:
    """The trunk's masks rewound to another iteration: ``k > 0`` if the trunk rewound to 0, else 0.

    The weights at iteration ``k > 0`` are recomputed by replaying the trunk's dense training (same
    initialisation, same data order) for ``k`` steps. Default ``k``: 3 % of the training budget.
    """
    steps, trunk_k = trunk.cfg.train.steps, trunk.cfg.prune.rewind
    if k is None:
        k = default_rewind_to(trunk.cfg)
    if k == trunk_k or not 0 <= k < steps:
        raise ConfigError(f"--rewind-to must differ from the trunk's rewind iteration {trunk_k} and lie in "
                          f"[0, {steps}), got {k}")
    if k == 0:
        point = trunk.init
    else:
        model = trunk.model
        model.load_state_dict({n: torch.from_numpy(v) for n, v in trunk.init.items()})
        replay = trunk.cfg.replace(train={"steps": k, "eval_every": k})
        with torch_threads(model, None):
            _, captured = train_level(model, Masker(trunk.layers, full_masks(trunk.layers)), trunk.data, replay.train,
                                      stream_seed(trunk.cfg.seed, "data", 0, "trunk"), capture_at=k)
        point = {n: v.cpu().numpy() for n, v in captured.items()}
    return Branch(rewind_name(k), {"kind": "rewind", "rewind": k}, k, point, trunk.mask)


def random_masks(reference: Masks, scope: str, gen: torch.Generator) -> Masks:
    """Uniformly random masks keeping as many weights as ``reference``: per layer or in total."""
    if scope == "layerwise":
        return {n: keep_random(m.size, int(m.sum()), gen).reshape(m.shape) for n, m in reference.items()}
    if scope != "global":
        raise ConfigError(f"random pruning scope must be layerwise or global, got {scope!r}")
    sizes = [m.size for m in reference.values()]
    flat = keep_random(sum(sizes), sum(int(m.sum()) for m in reference.values()), gen)
    parts = np.split(flat, np.cumsum(sizes)[:-1])
    return {n: p.reshape(m.shape) for (n, m), p in zip(reference.items(), parts)}


def baseline(trunk: Trunk, kind: str, rewind_to: int | None = None) -> Branch:
    makers = {"reinit": lambda: reinit(trunk), "random_prune_layerwise": lambda: random_prune(trunk, "layerwise"),
              "random_prune_global": lambda: random_prune(trunk, "global"),
              "rewind": lambda: rewind_variant(trunk, rewind_to)}
    if kind not in makers:
        raise ConfigError(f"unknown baseline {kind!r}; valid baselines are {', '.join(BASELINES)}")
    return makers[kind]()


def run_baselines(path: str | Path, kinds: list[str] | tuple[str, ...] = BASELINES, levels: list[int] | None = None,
                  *, rewind_to: int | None = None, tensors: bool | None = None, device: str = "cpu", data_root=None,
                  progress: bool | None = None, threads: int | None = None,
                  log: Callable[[str], None] | None = None, stack: int | None = None) -> list[str]:
    """Train baseline branches of a run file at ``levels`` (default: every pruned level); resumable.

    ``kinds`` from :data:`BASELINES`; all kinds x levels train as stacks of at most ``stack`` runs (default:
    all at once). Returns the group paths written.
    """
    unknown = [k for k in kinds if k not in BASELINES]
    if unknown:
        raise ConfigError(f"unknown baseline(s) {unknown}; valid baselines are {', '.join(BASELINES)}")
    trunk = open_trunk(path, device, data_root)
    levels = list(range(1, trunk.levels)) if levels is None else list(levels)
    check_levels(trunk, levels)
    check_threads(threads)
    branches = [baseline(trunk, k, rewind_to) for k in kinds]  # every refusal before the first write
    return run_branches(trunk, branches, levels, tensors=tensors, progress=progress, threads=threads, log=log,
                        stack=stack)


def keep_random(size: int, keep: int, gen: torch.Generator) -> np.ndarray:
    """A flat bool mask with ``keep`` entries set, uniformly at random."""
    m = np.zeros(size, dtype=bool)
    m[torch.randperm(size, generator=gen)[:keep].numpy()] = True
    return m


def _span(levels: list[int]) -> str:
    return f"{levels[0]}-{levels[-1]}" if levels == list(range(levels[0], levels[-1] + 1)) else str(levels)
