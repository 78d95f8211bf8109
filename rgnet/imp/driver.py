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

from rgnet.config import RunConfig, TrainConfig, eval_iterations, nondefault, validate
from rgnet.engine.loop import EVAL_CHUNK, DeviceData
from rgnet.engine.masks import density, full_masks
from rgnet.engine.prune import next_masks
from rgnet.engine.seeds import stream_seed
from rgnet.engine.train import Trained, train_stack
from rgnet.engine.train import numpy_state_dict as _numpy
from rgnet.errors import ConfigError, DivergedError, LimitError, StoreError
from rgnet.imp.provenance import machine
from rgnet.models import build_model, check_params, output_layer, prunable_layers
from rgnet.progress import Log, Stages, duration, left, on_terminal, to_stderr
from rgnet.store.outputs import inside_run
from rgnet.store.provenance import rgnet_version
from rgnet.store.reader import read_resume_state
from rgnet.store.schema import METRIC_NAMES
from rgnet.store.writer import check_run_file, commit_level, create_run, exclusive, root_attrs
from rgnet.tasks import Task, load_task, resolve_params, task_label
from rgnet.theory import level_theory, unit_count

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


# Where each committed level is reported besides the run file: (run file, level, what was stored, branch group or
# None for the trunk). A progress display, a live plot or a test's in-memory list.
LevelSink = Callable[[Path, int, dict, "str | None"], None]


def commit(path: Path, level: int, rec: dict, group: str | None, sink: LevelSink | None,
           device: torch.device | None = None) -> None:
    """Commit ``level`` (trained on ``device``, with torch's current thread count) to the run file, then report it
    to ``sink``."""
    commit_level(path, level, rec, group=group, provenance=None if device is None else machine(device))
    if sink is not None:
        sink(path, level, rec, group)


def record(cfg: RunConfig, out: str | Path | None = None, *, device: str = "cpu",
           data_root: str | Path | None = None, progress: bool | None = None, threads: int | None = None,
           log: Callable[[str], None] | None = None, sink: LevelSink | None = None) -> Path:
    """Run (or resume) IMP for ``cfg`` and record every level into ``out``; returns the file path.

    ``progress=None`` shows a bar only on a terminal. ``threads``: CPU threads for torch; by default 1 for
    models under a million parameters (their matrices are too small to share, and a busy second core makes
    two threads up to 10x slower), torch's default otherwise. Every check (settings, data, model) runs before
    anything is written; a file at ``out`` with another config, or that is not an rgnet file, is never
    modified (:class:`StoreError`). A level whose training diverges is recorded as such and ends the run
    (:class:`DivergedError`). ``sink`` hears of every level once it is committed. The same as
    :func:`record_many` with one run.
    """
    return record_many([cfg], [out], device=device, data_root=data_root, progress=progress, threads=threads,
                       log=log, sink=sink)[0]


def record_many(cfgs: list[RunConfig], outs: list | None = None, *, stack: int | None = None,
                device: str = "cpu", data_root: str | Path | None = None, progress: bool | None = None,
                threads: int | None = None, log: Callable[[str], None] | None = None,
                sink: LevelSink | None = None) -> list[Path]:
    """Record several runs (e.g. seeds), each into its own resumable file, training up to ``stack`` of them
    at once as one stacked model (:mod:`rgnet.engine`; default: all runs that share an architecture, training
    settings and data shapes). Each file is the one :func:`record` writes for that run alone, except for the
    wall-time variable ``train_seconds`` (a stack's time, shared equally by its runs).

    ``outs``: one path per run, or None for the default paths. Every run's checks come before the first write;
    a run that diverges ends its own IMP, the others go on, and :class:`DivergedError` names them at the end.
    """
    cfgs = [normalise(c) for c in cfgs]
    dev = resolve_device(device)
    check_threads(threads)
    check_stack(stack)
    outs = [None] * len(cfgs) if outs is None else list(outs)
    if len(outs) != len(cfgs):
        raise ConfigError(f"record_many needs one output path per run, got {len(outs)} for {len(cfgs)} runs")
    paths = [Path(o) if o is not None else default_path(c) for c, o in zip(cfgs, outs)]
    for p in paths:
        owner = None if p.exists() else inside_run(p)  # an existing file is checked as a run file below
        if owner:
            raise ConfigError(f"--out {str(p)!r} is {owner}; a new run goes elsewhere — pass another --out")
    twice = sorted({str(p) for p in paths if paths.count(p) > 1})
    if twice:
        raise ConfigError(f"two runs would record into the same file {twice[0]!r}; give each run its own --out")
    diverged: list[str] = []
    tasks: dict[str, Task] = {}  # runs of one task share its arrays (and, in a stack, one copy on the device)
    todo = []
    for cfg, path in zip(cfgs, paths):  # every check before the first write
        attrs = _check_resumable(path, cfg) if path.exists() else None
        if attrs is not None and _complete_or_diverged(cfg, path, log, diverged):
            continue
        key = json.dumps(dataclasses.asdict(cfg.task), sort_keys=True)
        if key not in tasks:
            tasks[key] = load_checked_task(cfg, path, attrs, data_root)
        else:
            load_checked_task(cfg, path, attrs, data_root)  # the fingerprint check of this file
        todo.append((cfg, path, tasks[key]))
    groups = _stacks(todo, stack)
    for group in groups:  # limits before the first write
        check_capacity([(cfg, task) for cfg, _, task in group], dev)
    # one display for every stack; a run found resumed or finished takes its levels out of the plan
    with LevelBar(sum(c.prune.levels + 1 for c, _, _ in todo),
                  sum((c.prune.levels + 1) * c.train.steps for c, _, _ in todo), progress, log) as bar:
        for group in groups:
            diverged += _record_stack(group, dev, data_root, bar, threads, log, bar.sink(sink))
    if diverged:
        raise DivergedError("; ".join(diverged))
    return paths


def _stacks(todo: list, size: int | None) -> list[list]:
    """Runs that can train as one stack (same architecture, training settings, data shapes), ``size`` at most."""
    groups: dict[str, list] = {}
    for cfg, path, task in todo:
        key = json.dumps([dataclasses.asdict(cfg.model), dataclasses.asdict(cfg.train), list(task.in_shape),
                          task.n_classes, len(task.y_train), len(task.y_val), len(task.y_test)], sort_keys=True)
        groups.setdefault(key, []).append((cfg, path, task))
    size = size or max(1, len(todo))
    return [g[i:i + size] for g in groups.values() for i in range(0, len(g), size)]


def _record_stack(group: list, dev: torch.device, data_root, bar: LevelBar, threads, log, sink) -> list[str]:
    """Open (create or resume) the files of ``group`` under their locks and train them level by level."""
    diverged: list[str] = []
    data: dict[int, DeviceData] = {}
    with contextlib.ExitStack() as locks:
        runs = []
        for cfg, path, task in group:
            path.parent.mkdir(parents=True, exist_ok=True)
            locks.enter_context(exclusive(path))
            run = _open_run(cfg, path, task, dev, data_root, log, diverged, threads)
            bar.skip(cfg.prune.levels + 1 if run is None else run.level, cfg.train.steps)
            if run is not None:
                run.data = data.setdefault(id(task), DeviceData.from_task(task, dev))
                runs.append(run)
        if runs:
            with torch_threads(runs[0].model, threads):
                diverged += _run_levels(runs, bar, sink)
    return diverged


@dataclasses.dataclass
class _Run:
    """One run being recorded: its file, model and data, and where its IMP stands."""

    cfg: RunConfig
    path: Path
    model: torch.nn.Module
    layers: dict
    output: str
    init: dict[str, np.ndarray]
    level: int                            # the next level to train
    masks: dict[str, torch.Tensor]        # the masks it trains with
    rewind: dict[str, np.ndarray] | None  # the rewind point (None before level 0 is trained)
    data: DeviceData | None = None
    done: bool = False


def _open_run(cfg, path, task, dev, data_root, log, diverged, threads=None) -> _Run | None:
    """Create ``path`` or read where it stands (under its lock); None if it needs no more levels."""
    attrs = _check_resumable(path, cfg) if path.exists() else None  # another process may have made it since
    if attrs is not None:
        load_checked_task(cfg, path, attrs, data_root)
        if _complete_or_diverged(cfg, path, log, diverged):
            return None
    model, layers, output = build(cfg, task, dev)
    resume = read_resume_state(path) if attrs is not None else None
    if resume is None:
        versions = {"rgnet": rgnet_version(), "torch": torch.__version__, "numpy": np.__version__,
                    "python": platform.python_version()}
        attrs = root_attrs(cfg.run_id, cfg.to_json(), task.summary(), versions,
                           machine(dev, default_threads(model, threads)))
        create_run(path, attrs, task_label(cfg.to_json()),
                   **layout_of(cfg, layers))
    elif resume["levels"] and log:
        log(f"resuming {path} after level {resume['levels'] - 1}")
    if not resume or not resume["levels"]:
        return _Run(cfg, path, model, layers, output, numpy_state(model), 0, full_masks(layers), None)
    masks = {n: torch.from_numpy(m.astype(bool)).to(dev) for n, m in resume["next_mask"].items()}
    return _Run(cfg, path, model, layers, output, numpy_state(model), resume["levels"], masks, resume["rewind"])


def _complete_or_diverged(cfg: RunConfig, path: Path, log, diverged: list[str]) -> bool:
    """:func:`_complete`, with a divergence noted in ``diverged`` instead of raised."""
    try:
        return _complete(cfg, path, log)
    except DivergedError as e:
        diverged.append(str(e))
        return True


def _complete(cfg: RunConfig, path: Path, log) -> bool:
    """Whether the run in ``path`` needs no more levels; :class:`DivergedError` if it ended by diverging."""
    state = read_resume_state(path)
    if state["diverged"]:
        raise DivergedError(_diverged_message(path, state["levels"] - 1, state["diverged_iteration"]))
    if cfg.prune.finished(state["levels"], state["density"]):
        if log:
            log(f"{path} is complete ({state['levels']} levels); nothing to do")
        return True
    return False


def _diverged_message(path: Path, level: int, iteration: int) -> str:
    return (f"training diverged at level {level}, iteration {iteration} (non-finite loss or weights) in "
            f"{str(path)!r}; the level is recorded as diverged and IMP stopped there — lower --lr (or use "
            "warmup) and record into another --out")


BYTES_PER_PARAMETER = 48  # weights, gradient, Adam moments, masks, init/rewind/best/trained copies, theory sorts


def check_capacity(runs: list[tuple[RunConfig, Task]], dev: torch.device) -> None:
    """:class:`LimitError` if the runs, trained as one stack, cannot fit the device's memory, or if a run plans
    more levels than its model has weights to prune. The model is built on the meta device (no memory)."""
    cfg, task = runs[0]
    with torch.device("meta"):
        model = build_model(cfg.model, task.in_shape, task.n_classes)
    total = sum(p.numel() for p in model.parameters())
    prunable = sum(p.numel() for p in prunable_layers(model, cfg.model).values())
    for c, _ in runs:
        p = c.prune
        reach = int(np.floor(np.log(prunable) / -np.log1p(-p.fraction)))  # (1 - p)^L N >= 1 weight
        if p.levels > reach and p.target_density == 0:
            raise LimitError(f"prune.levels (--levels) {p.levels} prunes below one weight: at fraction {p.fraction} "
                             f"the {prunable:,} prunable weights of this model are gone after {reach} levels; use "
                             f"--levels {reach} or fewer")
    need, have = len(runs) * (total * BYTES_PER_PARAMETER + _activation_bytes(model, task, cfg)), _memory(dev)
    if have is not None and need > have:
        several = f"{len(runs)} runs of " if len(runs) > 1 else ""
        raise LimitError(f"training {several}{cfg.model.name} with {total:,} parameters needs about "
                         f"{need / 2**30:.1f} GiB (weights, optimiser state, copies and activations), "
                         f"more than the {have / 2**30:.1f} GiB free on {dev}; use a smaller model"
                         + (" or a smaller --stack" if several else ""))


def _activation_bytes(model: torch.nn.Module, task: Task, cfg: RunConfig) -> int:
    """Bytes of layer outputs at the peak of a step, counted on the meta device: training keeps every output of
    a batch and its gradient; evaluation (no gradients) two outputs of a chunk at a time."""
    sizes: list[int] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(out.numel()))
             for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(torch.empty((1, *task.in_shape), device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return 4 * max(2 * cfg.train.batch_size * sum(sizes), 2 * EVAL_CHUNK * max(sizes))


def _memory(dev: torch.device) -> int | None:
    """Bytes free for training on ``dev`` (None: unknown)."""
    if dev.type == "cuda":
        return torch.cuda.mem_get_info(dev)[0]
    try:
        with open("/proc/meminfo") as fh:
            info = dict(line.split(":", 1) for line in fh)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def check_stack(stack: int | None) -> None:
    if stack is not None and (isinstance(stack, bool) or not isinstance(stack, int) or stack < 1):
        raise ConfigError(f"--stack must be a positive number of runs trained at once, got {stack!r}")


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
                levels=cfg.prune.levels + 1, tensors=cfg.store.tensors,
                units=unit_count([tuple(p.shape) for p in layers.values()]))


def default_threads(model: torch.nn.Module, threads: int | None) -> int:
    """The CPU threads training ``model`` uses: ``threads``, or by default 1 for models under a million parameters."""
    if threads is None:
        small = sum(p.numel() for p in model.parameters()) < 1_000_000
        threads = 1 if small else torch.get_num_threads()
    return threads


@contextlib.contextmanager
def torch_threads(model: torch.nn.Module, threads: int | None):
    """CPU threads for training: :func:`default_threads`."""
    threads = default_threads(model, threads)
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


@dataclasses.dataclass
class LevelJob:
    """One level of one run (a trunk or a branch) for :func:`train_levels`: what it trains, and ``finish``,
    called with its :class:`~rgnet.engine.train.Trained` outcome and its share of the wall time (seconds)."""

    model: torch.nn.Module            # the architecture (jobs trained together must share it)
    train: TrainConfig
    state: dict[str, np.ndarray]      # the weights training starts from
    masks: dict[str, torch.Tensor]
    data: DeviceData
    stream: int                       # data-order stream (from seed, level, branch)
    start: int                        # iteration training starts at
    capture_at: int | None            # iteration whose weights are kept (the rewind point), if any
    label: str
    finish: Callable[[Trained, float], None]


def train_levels(jobs: list[LevelJob], bar: "LevelBar", stack: int | None = None) -> None:
    """The one level loop of trunks, baselines and transfers: train ``jobs`` as stacks of at most ``stack``
    (default: all) — those with the same settings, start and capture iteration together — then finish each
    (prune, describe, commit) in order."""
    groups: dict[tuple, list[LevelJob]] = {}
    for j in jobs:
        groups.setdefault((json.dumps(dataclasses.asdict(j.train), sort_keys=True), j.start, j.capture_at),
                          []).append(j)
    size = stack or max(1, len(jobs))
    for group in groups.values():
        for i in range(0, len(group), size):
            part = group[i:i + size]
            t0 = time.perf_counter()
            trained = train_stack(part[0].model, [j.state for j in part], [j.masks for j in part],
                                  [j.data for j in part], part[0].train, [j.stream for j in part],
                                  start=part[0].start, capture_at=part[0].capture_at,
                                  on_eval=bar.runs(part[0].label, part[0].start, len(part), density(part[0].masks),
                                                   part[0].train.steps))
            seconds = (time.perf_counter() - t0) / len(part)
            for j, t in zip(part, trained):
                j.finish(t, seconds)


def _run_levels(runs: list[_Run], bar: LevelBar, sink: LevelSink | None) -> list[str]:
    """IMP of ``runs``: train every unfinished run's next level (as stacks), prune, commit, until each run is
    done; returns the divergence messages."""
    diverged: list[str] = []
    while not all(r.done for r in runs):
        todo = [r for r in runs if not r.done]
        train_levels([_trunk_level(r, diverged, sink) for r in todo], bar)
        for r in todo:
            if r.done:  # at the target density, or diverged: its planned levels after this one are not trained
                bar.skip(r.cfg.prune.levels + 1 - r.level, r.cfg.train.steps)
    return diverged


def _trunk_level(r: _Run, diverged: list[str], sink: LevelSink | None) -> LevelJob:
    """The next level of trunk ``r``: level 0 trains from 0 and captures the rewind point; later levels start
    there. Finishing prunes, commits and moves ``r`` to its next level."""
    level, k = r.level, r.cfg.prune.rewind

    def finish(t: Trained, seconds: float) -> None:
        failed, dens = t.result.diverged_at is not None, density(r.masks)
        if level == 0:
            # a net that diverged before the rewind iteration has no rewind point: IMP ends at level 0 anyway
            r.rewind = _numpy(t.captured) if t.captured is not None else r.init
        pruned = next_masks([t], [r.masks], [r.output], [r.cfg.prune])[0]
        rec = describe_level(r.cfg, t.result, seconds, r.masks, t.trained, r.rewind, pruned)
        if level == 0:
            rec.update(init=r.init, rewind=r.rewind)
        commit(r.path, level, rec, None, sink, r.data.x["train"].device)
        if failed:
            diverged.append(_diverged_message(r.path, level, t.result.diverged_at))
        r.masks, r.level = pruned, level + 1
        r.done = failed or r.cfg.prune.finished(r.level, dens)

    return LevelJob(r.model, r.cfg.train, r.init if r.rewind is None else r.rewind, r.masks, r.data,
                    stream_seed(r.cfg.seed, "data", level, TRUNK), 0 if level == 0 else k,
                    k if level == 0 else None, f"level {level}", finish)


class LevelBar:
    """Progress of the levels a command trains. On a terminal a tqdm bar over their iterations; in a log (stderr
    not a terminal) plain lines (:class:`rgnet.progress.Stages`: the time elapsed in front): one per level
    committed and, within a level, one every :data:`~rgnet.progress.PACE` seconds, each with an estimate of the
    time left in the level and in all. ``progress``: None picks by the terminal, True always the bar, False
    nothing. The lines go to ``log`` (default stderr).

    ``levels`` and ``iterations`` are the plan (``skip`` takes out what turns out not to need training);
    ``runs()`` gives the ``on_eval`` callback of a stack, ``sink()`` a level sink that reports commits.
    """

    def __init__(self, levels: int, iterations: int, progress: bool | None, log: Log | None = None):
        lines = progress is None and not on_terminal()
        self.show = progress is not False and not lines
        self.bar = None       # opened when training starts, after the messages of opening the files
        self.log = (log or to_stderr) if lines else None
        self.say: Stages | None = None
        self.levels, self.iterations = levels, iterations
        self.done = 0         # iterations counted: trained, or passed over by a start at the rewind iteration
        self.free = 0         # of which passed over (no time spent: left out of the pace)
        self.committed = 0
        self.stack: tuple[float, int, int] | None = None  # (started, done before it, its iterations)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()

    def skip(self, levels: int, steps: int) -> None:
        """Take ``levels`` of ``steps`` iterations out of the plan (done before, or not needed after all)."""
        self.levels -= levels
        self.iterations -= levels * steps
        if self.bar is not None:
            self.bar.total = self.iterations
            self.bar.refresh()

    def _open(self) -> None:
        if self.bar is None:
            self.bar = tqdm(total=self.iterations, unit="it", dynamic_ncols=True, file=sys.stderr,
                            disable=not self.show)
            if self.log:
                self.say = Stages(self.log)  # its clock starts with the training
                self.say(f"training {self.levels} level{'s' if self.levels != 1 else ''} "
                         f"({self.iterations:,} iterations)")

    def _count(self, n: int) -> None:
        self.bar.update(n)
        self.done += n

    def _settle(self) -> None:
        """Count the whole of the stack that finished (a run that diverged stops reporting)."""
        if self.stack is not None:
            _, before, size = self.stack
            self._count(before + size - self.done)
            self.stack = None

    def _left(self) -> str:
        return left(self.done - self.free, self.iterations - self.free, self.say.clock.elapsed)

    def runs(self, label: str, start: int, n: int, dens: float, steps: int) -> Callable[[int, dict, int], None]:
        """The ``on_eval(it, metrics, k)`` of a stack of ``n`` runs trained from ``start`` to ``steps``: the bar
        counts the iterations of all of them and shows the first run's metrics."""
        self._open()
        self._settle()
        desc = label + (f" (+{n - 1} more)" if n > 1 else "")
        self.bar.set_description(desc)
        self._count(start * n)  # pruned levels start at the rewind iteration
        self.free += start * n
        self.stack = (self.say.clock.elapsed if self.say else 0.0, self.done, n * (steps - start))
        last = [start] * n

        def on_eval(it, m, k):
            if k == 0:
                self.bar.set_postfix(density=f"{dens:.3f}", val_acc=f"{m['val_acc']:.3f}",
                                     test_acc=f"{m['test_acc']:.3f}")
            self._count(it - last[k])
            last[k] = it
            if self.say and self.say.clock.due():
                started, before, size = self.stack
                spent = self.say.clock.elapsed - started
                self.say(f"{desc}: step {it:,} of {steps:,}, {duration(spent)} in the level, "
                         f"{left(self.done - before, size, spent)} left in it, {self._left()} left in all")

        return on_eval

    def sink(self, then: LevelSink | None = None) -> LevelSink | None:
        """A level sink that writes a line for each level committed, then tells ``then``."""
        if self.log is None:
            return then

        def report(path: Path, level: int, rec: dict, group: str | None) -> None:
            self._settle()
            self.committed += 1
            where = f"{path}:{group}" if group else str(path)
            state = "diverged" if rec["diverged"] else (f"density {rec['density']:.4f}, val_acc {rec['val_acc']:.4f}, "
                                                        f"test_acc {rec['test_acc']:.4f}")
            self.say(f"{where}: level {level} committed ({state}); {self.committed} of {self.levels} levels, "
                     f"{self._left()} left")
            if then is not None:
                then(path, level, rec, group)

        return report


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
    weights = None if diverged else {n: trained[f"{n}.weight"] for n in masks}  # no statistics of non-finite weights
    rec.update(level_theory(weights, {n: rewind[f"{n}.weight"] for n in masks}, rec["mask"], cfg.store.bins))
    return rec


def numpy_state(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return _numpy(model.state_dict())


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out

