"""A sweep spec (TOML): a base run config, what varies (tasks, models, grid, seeds), and which branches to train.

```toml
[train]                    # the base run config: the sections of a run config (rgnet record --config)
steps = 3000

[sweep]
seeds = [0, 1, 2, 3, 4]    # or "0-4"

[tasks.default]            # named tasks (optional; default: the base [task])
name = "mnist1d"
[tasks.noise_mild]
name = "mnist1d"
params = { corr_noise_scale = 0.3 }

[models.mlp]               # named models (optional; default: the base [model])
name = "mlp"

[grid]                     # any setting by its dotted path: every combination (optional)
"train.lr" = [1e-2, 3e-3]

[baselines]                # optional
kinds = ["reinit", "random_prune_layerwise"]
levels = [1, 2, 4]         # or "1-12"; default every pruned level
tensors = false

[transfers]                # optional: tickets of every run trained on every other (same model)
levels = [1, 2, 4]
align = ["none"]           # none, inputs, inputs+units (each its own branch)
min_confidence = 5.0       # aligned transfers of pairs whose input permutation is less certain are refused
pairs = "all"              # or [["default", "noise_mild"], ...] by run label
seeds = "same"             # same-seed pairs, or "all" seed combinations
tensors = false
```

A task (model) member with the base's task (model) name adds its parameters to the base's; another name starts
from that task's (model's) defaults — as ``rgnet record --config base.toml --task NAME`` does. Every run is
named by a readable label (task key, model key when there are several, grid values) and its run_id.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

from rgnet.align import ALIGN_MODES, MIN_CONFIDENCE, check_align
from rgnet.config import RunConfig
from rgnet.errors import ConfigError, LimitError, RgnetError
from rgnet.imp.names import parse_levels
from rgnet.tasks import task_label

BASE_SECTIONS = ("task", "model", "train", "prune", "store")
SWEEP_SECTIONS = ("sweep", "tasks", "models", "grid", "baselines", "transfers")
BASELINE_KINDS = ("reinit", "random_prune_layerwise", "random_prune_global", "rewind")
_KEYS = {"sweep": ("seeds",), "tasks": ("name", "params"), "models": ("name", "params", "prune_first", "prune_output"),
         "baselines": ("kinds", "levels", "tensors", "rewind_to"),
         "transfers": ("levels", "align", "min_confidence", "pairs", "seeds", "tensors")}


@dataclass(frozen=True)
class PlannedRun:
    """One run of the sweep: its readable ``label`` (without the seed), normalised config and file name."""

    label: str
    config: RunConfig

    @property
    def file(self) -> str:
        stem = re.sub(r"[^A-Za-z0-9._=+-]+", "-", self.label).strip("-") or "run"
        return f"{stem}-s{self.config.seed}-{self.config.run_id}.h5"


@dataclass(frozen=True)
class Branches:
    """What to train on the runs: baselines (``kinds``) or transfers (``align``, ``pairs``)."""

    levels: tuple[int, ...] | None = None
    tensors: bool | None = None
    kinds: tuple[str, ...] = ()
    rewind_to: int | None = None
    align: tuple[str, ...] = ("none",)
    min_confidence: float = MIN_CONFIDENCE
    pairs: tuple[tuple[str, str], ...] = ()   # (source label, target label)
    seeds: str = "same"


@dataclass(frozen=True)
class Spec:
    runs: tuple[PlannedRun, ...]
    baselines: Branches | None
    transfers: Branches | None
    text: str   # the TOML source, kept in the sweep's index

    def transfer_pairs(self) -> list[tuple[PlannedRun, PlannedRun]]:
        """(source, target) runs: the label pairs, same model, same seed unless ``seeds = "all"``."""
        t = self.transfers
        if t is None:
            return []
        by_label: dict[str, list[PlannedRun]] = {}
        for r in self.runs:
            by_label.setdefault(r.label, []).append(r)
        out = []
        for src, tgt in t.pairs:
            for a in by_label[src]:
                for b in by_label[tgt]:
                    if a.config.model == b.config.model and (t.seeds == "all" or a.config.seed == b.config.seed):
                        out.append((a, b))
        return out


def task_labels(spec: str | Path) -> dict[str, str]:
    """Short task names from a sweep spec: task key (``rgnet.tasks.task_label``) -> the spec's run label, for
    ``labels=`` of ``open_runs``, ``transfer_matrix``, ``winning_tickets`` and ``universality`` on files of that
    experiment wherever they lie (``rgnet.task_labels("scripts/transfer_family.toml")``)."""
    pairs = {(task_label(r.config.to_json()), r.label) for r in load_spec(spec).runs}
    keys = [k for k, _ in pairs]
    clash = sorted({k for k in keys if keys.count(k) > 1})
    if clash:
        raise ConfigError(f"sweep spec {str(spec)!r} gives task {clash[0]} more than one label; its labels name "
                          "runs, not tasks — pass labels={task: name} yourself")
    return dict(sorted(pairs))


def load_spec(path: str | Path) -> Spec:
    """Read and check a sweep spec; :class:`ConfigError` (one sentence) names the first problem."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"sweep spec {str(p)!r} does not exist; pass the path of a TOML sweep spec")
    text = p.read_text()
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"sweep spec {str(p)!r} is not valid TOML ({e}); fix the syntax and retry") from None
    try:
        return parse_spec(d, text)
    except ConfigError as e:
        raise ConfigError(f"sweep spec {str(p)!r}: {e}") from None


MAX_RUNS = 10_000  # runs of one sweep


def parse_spec(d: dict[str, Any], text: str = "") -> Spec:
    """A :class:`Spec` from the parsed TOML ``d``."""
    unknown = sorted(set(d) - set(BASE_SECTIONS) - set(SWEEP_SECTIONS))
    if unknown:
        hint = " (give seeds as [sweep] seeds = [...])" if "seed" in unknown else ""
        raise ConfigError(f"unknown section(s) {unknown}{hint}; valid sections are "
                          f"{', '.join(BASE_SECTIONS + SWEEP_SECTIONS)}")
    base = {k: d[k] for k in BASE_SECTIONS if k in d}
    sweep = _table(d, "sweep")
    _known(sweep, "sweep")
    seeds = _seeds(sweep.get("seeds", [0]))
    tasks = _members(d, "tasks")
    models = _members(d, "models")
    grid = _grid(d.get("grid", {}))
    size = max(len(tasks), 1) * max(len(models), 1) * math.prod(len(v) for v in grid.values()) * len(seeds)
    if size > MAX_RUNS:  # before any run is built: a huge spec answers at once
        raise LimitError(f"the sweep has {size:,} runs (tasks x models x grid points x seeds), more than "
                         f"{MAX_RUNS:,}; split it into several specs")
    runs = _expand(base, tasks, models, grid, seeds)
    baselines = _baselines(d["baselines"], runs) if "baselines" in d else None
    transfers = _transfers(d["transfers"], runs) if "transfers" in d else None
    return Spec(tuple(runs), baselines, transfers, text)


# ------------------------------------------------------------------------------------------ the runs

def _expand(base: dict, tasks: dict, models: dict, grid: dict, seeds: list[int]) -> list[PlannedRun]:
    from rgnet.imp.driver import normalise  # noqa: PLC0415  (validates task and model parameters against their registries)

    runs, ids = [], {}
    grid_points = list(itertools.product(*grid.values())) if grid else [()]
    for (tkey, task), (mkey, model), point, seed in itertools.product(
            tasks.items() or [(None, None)], models.items() or [(None, None)], grid_points, seeds):
        d = copy.deepcopy(base)
        if task is not None:
            d["task"] = _member(d.get("task", {}), task, "mnist1d")
        if model is not None:
            d["model"] = _member(d.get("model", {}), model, "mlp")
        for key, value in zip(grid, point):
            _set(d, key, value)
        d["seed"] = seed
        try:
            cfg = normalise(RunConfig.from_dict(d))
        except ConfigError as e:
            where = ", ".join(x for x in (tkey and f"task {tkey!r}", mkey and f"model {mkey!r}",
                                          point and f"grid {dict(zip(grid, point))}") if x)
            raise ConfigError(f"{where + ': ' if where else ''}{e}") from None
        label = _label(cfg, tkey, mkey if len(models) > 1 else None, dict(zip(grid, point)))
        if cfg.run_id in ids:
            raise ConfigError(f"runs {ids[cfg.run_id]!r} and {label!r} (seed {seed}) are the same run (run_id "
                              f"{cfg.run_id}); make the members differ or remove one")
        ids[cfg.run_id] = label
        runs.append(PlannedRun(label, cfg))
    labels = [(r.label, r.config.seed) for r in runs]
    if len(set(labels)) < len(labels):
        dup = next(x for x in labels if labels.count(x) > 1)
        raise ConfigError(f"two runs would both be labelled {dup[0]!r} with seed {dup[1]}; give the tasks or "
                          "models distinct keys")
    return runs


def _member(base: dict, member: dict, default_name: str) -> dict:
    """A task or model table: the base's parameters plus the member's if it names the same thing, else its own."""
    if member["name"] != base.get("name", default_name):
        return copy.deepcopy(member)
    out = {**copy.deepcopy(base), **{k: v for k, v in member.items() if k != "params"}}
    out["params"] = {**base.get("params", {}), **member.get("params", {})}
    return out


def _set(d: dict, key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    for p in parents:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise ConfigError(f"grid key {key!r} does not name a setting; use dotted paths like "
                              "\"train.lr\" or \"task.params.corr_noise_scale\"")
    d[leaf] = value


def _label(cfg: RunConfig, tkey: str | None, mkey: str | None, point: dict) -> str:
    # the task's own key, else its label (only its name when the grid varies the task: the grid values follow)
    task = tkey or (cfg.task.name if any(k.startswith("task.") for k in point) else task_label(cfg.to_dict()))
    parts = [task] + ([mkey] if mkey else [])
    leaves = [k.rsplit(".", 1)[-1] for k in point]
    for (k, v), leaf in zip(point.items(), leaves):
        name = leaf if leaves.count(leaf) == 1 else k
        parts.append(f"{name}={v if isinstance(v, str) else json.dumps(v, separators=(',', ':'))}")
    return "_".join(parts)


# ------------------------------------------------------------------------------------------ parsing helpers

def _table(d: dict, name: str) -> dict:
    v = d.get(name, {})
    if not isinstance(v, dict):
        raise ConfigError(f"[{name}] must be a table, got {v!r}")
    return v


def _known(t: dict, name: str, keys: tuple[str, ...] | None = None) -> None:
    keys = keys or _KEYS[name]
    unknown = sorted(set(t) - set(keys))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in [{name}]; valid keys are {', '.join(keys)}")


def _numbers(v: Any, name: str) -> list[int] | None:
    """Sorted integers >= 0 from a TOML list or a range like "1-12" or "0,2,4-6"; None if ``v`` is neither."""
    if isinstance(v, str):
        try:
            return parse_levels(v, name) or None
        except LimitError:
            raise
        except RgnetError:
            return None
    if isinstance(v, list) and v and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v):
        return sorted(set(v))
    return None


def _seeds(v: Any) -> list[int]:
    out = _numbers(v, "[sweep] seeds")
    if out is None:
        raise ConfigError(f"[sweep] seeds must be a non-empty list of integers >= 0 or a range like \"0-4\", "
                          f"got {v!r}")
    return out


def _members(d: dict, name: str) -> dict[str, dict]:
    t = _table(d, name)
    if name in d and not t:
        raise ConfigError(f"[{name}] is empty; add members like [{name}.NAME] or remove it")
    for key, m in t.items():
        if not isinstance(m, dict):
            raise ConfigError(f"[{name}.{key}] must be a table with a name, e.g. name = \"mnist1d\"")
        _known(m, f"{name}.{key}", _KEYS[name])
        if not isinstance(m.get("name"), str) or not m["name"]:
            example = "mnist1d" if name == "tasks" else "mlp"
            raise ConfigError(f"[{name}.{key}] needs a name (e.g. name = \"{example}\")")
        if "params" in m and not isinstance(m["params"], dict):
            raise ConfigError(f"[{name}.{key}] params must be a table, e.g. params = {{ seed = 7 }}")
    return t


def _grid(g: Any) -> dict[str, list]:
    if not isinstance(g, dict):
        raise ConfigError(f"[grid] must be a table of dotted settings and their values, got {g!r}")
    for key, values in g.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"[grid] {key!r} must be a non-empty list of values, e.g. {key!r} = [1, 2]")
        if key.split(".", 1)[0] not in BASE_SECTIONS or "." not in key:
            raise ConfigError(f"[grid] key {key!r} must be the dotted path of a setting in one of "
                              f"{', '.join(BASE_SECTIONS)} (e.g. \"train.lr\"); seeds go in [sweep] seeds")
    return g


def _levels(v: Any, where: str, runs: list[PlannedRun]) -> tuple[int, ...] | None:
    if v is None:
        return None
    out = _numbers(v, f"[{where}] levels")
    if out is None:
        raise ConfigError(f"[{where}] levels must be a non-empty list of integers >= 0 or a range like \"1-12\", "
                          f"got {v!r}")
    most = min(r.config.prune.levels for r in runs)
    bad = [x for x in out if not 0 <= x <= most]
    if bad:
        raise ConfigError(f"[{where}] levels {bad} are not IMP levels of every run (they have levels 0-{most}); "
                          "pick levels in that range")
    return tuple(out)


def _bool(t: dict, key: str, where: str) -> bool | None:
    v = t.get(key)
    if v is not None and not isinstance(v, bool):
        raise ConfigError(f"[{where}] {key} must be true or false, got {v!r}")
    return v


def _baselines(t: Any, runs: list[PlannedRun]) -> Branches:
    if not isinstance(t, dict):
        raise ConfigError(f"[baselines] must be a table, got {t!r}")
    _known(t, "baselines")
    kinds = t.get("kinds")
    if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) for k in kinds):
        raise ConfigError(f"[baselines] kinds must be a non-empty list of {', '.join(BASELINE_KINDS)}, got {kinds!r}")
    bad = [k for k in kinds if k not in BASELINE_KINDS]
    if bad:
        raise ConfigError(f"[baselines] unknown kind(s) {bad}; valid kinds are {', '.join(BASELINE_KINDS)}")
    rewind_to = t.get("rewind_to")
    if rewind_to is not None and (isinstance(rewind_to, bool) or not isinstance(rewind_to, int) or rewind_to < 0):
        raise ConfigError(f"[baselines] rewind_to must be an iteration >= 0, got {rewind_to!r}")
    return Branches(levels=_levels(t.get("levels"), "baselines", runs), tensors=_bool(t, "tensors", "baselines"),
                    kinds=tuple(dict.fromkeys(kinds)), rewind_to=rewind_to)


def _transfers(t: Any, runs: list[PlannedRun]) -> Branches:
    if not isinstance(t, dict):
        raise ConfigError(f"[transfers] must be a table, got {t!r}")
    _known(t, "transfers")
    labels = list(dict.fromkeys(r.label for r in runs))
    if len(labels) < 2:
        raise ConfigError(f"[transfers] needs at least two tasks to transfer between, the sweep has {labels}; add "
                          "[tasks.NAME] members or a [grid], or remove [transfers]")

    align = t.get("align", ["none"])
    align = [align] if isinstance(align, str) else align
    if not isinstance(align, list) or not align or any(a not in ALIGN_MODES for a in align):
        raise ConfigError(f"[transfers] align must be one or a list of {', '.join(ALIGN_MODES)}, got "
                          f"{t.get('align')!r}")
    for a in align:
        for r in runs:
            check_align(a, r.config.model.name)
    min_confidence = t.get("min_confidence", MIN_CONFIDENCE)
    if isinstance(min_confidence, bool) or not isinstance(min_confidence, (int, float)):
        raise ConfigError(f"[transfers] min_confidence must be a number, got {min_confidence!r}")
    seeds = t.get("seeds", "same")
    if seeds not in ("same", "all"):
        raise ConfigError(f"[transfers] seeds must be \"same\" (same-seed pairs) or \"all\", got {seeds!r}")
    pairs = t.get("pairs", "all")
    if pairs == "all":
        pairs = [(a, b) for a in labels for b in labels if a != b]
    elif isinstance(pairs, list) and pairs and all(isinstance(p, list) and len(p) == 2 for p in pairs):
        bad = sorted({x for p in pairs for x in p if x not in labels})
        if bad:
            raise ConfigError(f"[transfers] pairs name unknown run label(s) {bad}; the labels are {', '.join(labels)}")
        same = [p for p in pairs if p[0] == p[1]]
        if same:
            raise ConfigError(f"[transfers] pair {same[0]} transfers a task onto itself; pair different tasks")
        pairs = [tuple(p) for p in pairs]
    else:
        raise ConfigError(f"[transfers] pairs must be \"all\" or a list of [source, target] labels, got {pairs!r}")
    spec = Branches(levels=_levels(t.get("levels"), "transfers", runs), tensors=_bool(t, "tensors", "transfers"),
                    align=tuple(dict.fromkeys(align)), min_confidence=float(min_confidence),
                    pairs=tuple(dict.fromkeys(pairs)), seeds=seeds)
    if not Spec(tuple(runs), None, spec, "").transfer_pairs():
        raise ConfigError("[transfers] pairs no two runs (a transfer needs the same model, and the same seed unless "
                          "seeds = \"all\"); check the tasks, models and seeds")
    return spec
