"""Run configuration: frozen dataclasses, canonical JSON and the run_id hash.

A run is fully described by a :class:`RunConfig`. Its canonical JSON (sorted keys, defaults filled in)
is stored in every file, and ``run_id`` is a hash of it: the same config always gives the same id, so
``rgnet record`` can tell "resume this file" from "this file belongs to another experiment".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

from rgnet.errors import ConfigError


@dataclass(frozen=True)
class TaskConfig:
    """What is learned. ``params`` are the task's own generator/reader settings (see ``rgnet.tasks``)."""

    name: str = "mnist1d"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelConfig:
    """The architecture. ``params`` are passed to the model builder (e.g. ``widths`` for ``mlp``).

    ``prune_first`` / ``prune_output``: whether the first and the output layer are pruned; ``None`` takes
    the model's declared default.
    """

    name: str = "mlp"
    params: dict[str, Any] = field(default_factory=dict)
    prune_first: bool | None = None
    prune_output: bool | None = None


#: Early-stopping criteria: which evaluation of a level counts as its trained network (never the test set).
# Early-stopping rules (TrainConfig.early_stop): which evaluation of a level is its trained network. The rule
# itself is rgnet.engine.loop.stop_index; these are its names and meanings, everywhere they are shown.
STOP_RULES = {"val_acc": "maximum validation accuracy", "val_loss": "minimum validation loss"}
EARLY_STOP = tuple(STOP_RULES)
SCOPES = ("global", "layerwise")     # PruneConfig.scope
OPTIMIZERS = ("adam", "sgd")         # TrainConfig.optimizer


@dataclass(frozen=True)
class TrainConfig:
    """Masked training of one IMP level. Iterations are optimiser steps.

    Defaults follow Greydanus & Kobak's MNIST-1D MLP recipe (Adam 1e-2, batch 100, 6000 steps).
    """

    optimizer: str = "adam"            # adam | sgd
    lr: float = 1e-2
    momentum: float = 0.9              # sgd only
    weight_decay: float = 0.0
    batch_size: int = 100
    steps: int = 6000                  # iteration budget per level
    warmup: int = 0                    # linear warm-up iterations
    milestones: tuple[int, ...] = ()   # lr *= gamma at each of these iterations
    gamma: float = 0.1
    eval_every: int = 100              # evaluate on validation and test every E iterations
    early_stop: str = "val_acc"        # val_acc (max validation accuracy) | val_loss (min validation loss)


@dataclass(frozen=True)
class PruneConfig:
    """Iterative magnitude pruning.

    ``fraction`` of the surviving prunable weights is removed per level, either over all layers at once
    (``scope="global"``) or in each layer separately (``"layerwise"``). ``layer_fractions`` overrides the
    fraction of named layers; ``output_fraction`` that of the output layer (Frankle & Carbin use half the
    rate there). ``rewind`` is the iteration k whose weights survivors are reset to (0 = initialisation).
    IMP stops after ``levels`` levels after the dense one, or as soon as ``target_density`` is reached.
    """

    levels: int = 12
    fraction: float = 0.2
    scope: str = "global"              # global | layerwise
    layer_fractions: dict[str, float] = field(default_factory=dict)
    output_fraction: float | None = None
    rewind: int = 0
    target_density: float = 0.0

    def finished(self, levels_done: int, last_density: float | None) -> bool:
        """Whether IMP is over after ``levels_done`` complete levels, the last at density ``last_density``."""
        if levels_done == 0:
            return False
        if levels_done > self.levels:
            return True
        return last_density is not None and self.target_density > 0 and last_density <= self.target_density


@dataclass(frozen=True)
class StoreConfig:
    """What goes into the file besides the per-level summaries."""

    tensors: bool = True               # trained weights of every level (masks, init, rewind point always)
    bins: int = 64                     # histogram bins per layer, grid fixed at level 0


@dataclass(frozen=True)
class RunConfig:
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace, every default written out."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def run_id(self) -> str:
        """First 16 hex digits of the SHA-256 of the non-default settings (store settings excluded).

        As open_lth does: a setting added later with a default changes no existing run_id.
        """
        d = nondefault(self.to_dict())
        d.pop("store", None)  # what is saved does not change the experiment
        blob = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        d = dict(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown config section(s) {sorted(unknown)}; valid sections are "
                              "task, model, train, prune, store and seed")
        kw: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in d:
                continue
            sub = _SECTIONS.get(f.name)
            kw[f.name] = _build(sub, d[f.name], f.name) if sub else d[f.name]
        cfg = cls(**kw)
        validate(cfg)
        return cfg

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        return cls.from_dict(json.loads(text))

    def replace(self, **sections: Any) -> "RunConfig":
        """Copy with some fields of sections changed: ``cfg.replace(train={"steps": 10}, seed=3)``."""
        d = self.to_dict()
        for k, v in sections.items():
            if isinstance(v, dict) and isinstance(d.get(k), dict):
                d[k] = {**d[k], **v}
            else:
                d[k] = v
        return RunConfig.from_dict(d)


_SECTIONS = {"task": TaskConfig, "model": ModelConfig, "train": TrainConfig, "prune": PruneConfig,
             "store": StoreConfig}
_SECTION_NAMES = {v: k for k, v in _SECTIONS.items()}


def _build(cls: type, d: Any, where: str) -> Any:
    if not isinstance(d, dict):
        raise ConfigError(f"config section [{where}] must be a table of settings, got {d!r}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(names)
    if unknown:
        raise ConfigError(f"unknown setting(s) {sorted(unknown)} in [{where}]; valid settings are "
                          f"{', '.join(sorted(names))}")
    kw = {}
    for k, v in d.items():
        if k == "milestones" and isinstance(v, list):
            v = tuple(v)
        kw[k] = v
    return cls(**kw)


INT_LIMIT = 2**31


def eval_iterations(cfg: TrainConfig) -> np.ndarray:
    """Evaluation points 0, E, 2E, ... and always the last iteration."""
    its = list(range(0, cfg.steps + 1, cfg.eval_every))
    if its[-1] != cfg.steps:
        its.append(cfg.steps)
    return np.asarray(its, dtype=np.int64)


# ------------------------------------------------------------------------------------------ validation

def validate(cfg: RunConfig) -> RunConfig:
    """Check the type and range of every setting; :class:`ConfigError` names the first one that is wrong.

    The one place where settings are checked, so that a bad value is refused before anything is written.
    Task and model parameters are checked against their registries by ``rgnet.imp.driver.normalise``.
    """
    for section in (cfg, cfg.task, cfg.model, cfg.train, cfg.prune, cfg.store):
        hints = typing.get_type_hints(type(section))
        where = _SECTION_NAMES.get(type(section))
        for f in dataclasses.fields(section):
            if f.name in _SECTIONS:
                continue
            _check_type(getattr(section, f.name), hints[f.name], f"{where}.{f.name}" if where else f.name)
    t, p = cfg.train, cfg.prune
    checks = [
        (cfg.seed >= 0, f"seed must be >= 0, got {cfg.seed}"),
        (bool(cfg.task.name), "task.name must not be empty"),
        (0 < p.fraction < 1, f"prune.fraction (--fraction) must be between 0 and 1 (exclusive), got {p.fraction}"),
        (p.scope in SCOPES, f"prune.scope (--scope) must be {' or '.join(SCOPES)}, got {p.scope!r}"),
        (p.levels >= 0, f"prune.levels (--levels) must be >= 0, got {p.levels}"),
        (0 <= p.target_density < 1, f"prune.target_density must be in [0, 1), got {p.target_density}"),
        (p.output_fraction is None or 0 <= p.output_fraction < 1,
         f"prune.output_fraction must be in [0, 1), got {p.output_fraction}"),
        (all(0 <= v < 1 for v in p.layer_fractions.values()),
         f"prune.layer_fractions must all be in [0, 1), got {p.layer_fractions}"),
        (t.steps >= 1, f"train.steps (--steps) must be >= 1, got {t.steps}"),
        (0 <= p.rewind < t.steps, f"prune.rewind (--rewind) must be an iteration in [0, steps), got {p.rewind} "
                                  f"with steps={t.steps}"),
        (t.batch_size >= 1, f"train.batch_size (--batch-size) must be >= 1, got {t.batch_size}"),
        (t.lr > 0, f"train.lr (--lr) must be a finite positive number, got {t.lr}"),
        (0 <= t.momentum < 1, f"train.momentum must be in [0, 1), got {t.momentum}"),
        (t.weight_decay >= 0, f"train.weight_decay must be >= 0, got {t.weight_decay}"),
        (t.gamma > 0, f"train.gamma must be positive, got {t.gamma}"),
        (all(0 < m <= t.steps for m in t.milestones),
         f"train.milestones must be iterations in (0, steps={t.steps}], got {list(t.milestones)}"),
        (t.eval_every >= 1, f"train.eval_every (--eval-every) must be >= 1, got {t.eval_every}"),
        (t.optimizer in OPTIMIZERS, f"train.optimizer (--optimizer) must be {' or '.join(OPTIMIZERS)}, "
                                        f"got {t.optimizer!r}"),
        (t.early_stop in EARLY_STOP, f"train.early_stop (--early-stop) must be one of {', '.join(EARLY_STOP)}, "
                                     f"got {t.early_stop!r}"),
        (t.warmup >= 0, f"train.warmup must be >= 0, got {t.warmup}"),
        (cfg.store.bins >= 2, f"store.bins must be >= 2, got {cfg.store.bins}"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)
    return cfg


def check_like(value: Any, default: Any, name: str) -> None:
    """:class:`ConfigError` unless ``value`` has the type of ``default`` (a registry's default value).

    Integers are accepted where floats are expected, never the reverse; booleans only where booleans are;
    floats must be finite; lists must hold elements of the default's element type.
    """
    _check_type(value, _hint_of(default), name)


def _hint_of(default: Any) -> Any:
    if default is None:
        return Any
    if isinstance(default, (list, tuple)):
        return list[_hint_of(default[0])] if default else list
    if isinstance(default, dict):
        return dict
    return type(default)


def _check_type(value: Any, hint: Any, name: str) -> None:
    try:
        _check_type_raw(value, hint, name)
    except ConfigError as e:
        quoted = isinstance(value, str) and _is_number(value)
        raise ConfigError(f"{e}" + ("; write the number without quotes" if quoted else "; fix that setting")) from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_type_raw(value: Any, hint: Any, name: str) -> None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        if not -INT_LIMIT <= value < INT_LIMIT:  # iterations, seeds, counts are stored as 32-bit integers
            raise ConfigError(f"{name} must be smaller than 2**31 in absolute value (it is stored as a 32-bit "
                              f"integer), got {value}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value!r}")
    elif hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
    elif origin in (tuple, list):
        if not isinstance(value, (tuple, list)):
            raise ConfigError(f"{name} must be a list, got {value!r}")
        for i, v in enumerate(value):
            _check_type_raw(v, args[0] if args else Any, f"{name}[{i}]")
    elif origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"{name} must be a table of named settings, got {value!r}")
        for k, v in value.items():
            _check_type_raw(v, args[1] if args else Any, f"{name}.{k}")

# Each registered task's parameter defaults, filled by ``rgnet.tasks`` as it registers them (``import rgnet``
# imports it first): config stays below the task registry and still knows which task parameters are defaults.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {}


def nondefault(d: dict[str, Any]) -> dict[str, Any]:
    """The settings of a config dict that differ from the defaults, nested (empty sections dropped).

    Task parameters equal to the task's own defaults count as defaults too. Two configs describe the same
    experiment exactly when their ``nondefault`` dicts are equal, whatever fields were added since.
    """
    task = d.get("task", {})
    defaults = _plain(dataclasses.asdict(RunConfig()))
    if task.get("name") in TASK_DEFAULTS:
        defaults["task"]["params"] = dict(TASK_DEFAULTS[task["name"]])
    out = _diff(_plain(d), defaults)
    return {} if out is _SAME else out


def _diff(value: Any, default: Any) -> Any:
    if isinstance(value, dict) and isinstance(default, dict):
        out = {k: _diff(v, default.get(k, _MISSING)) for k, v in value.items()}
        out = {k: v for k, v in out.items() if v is not _SAME}
        return out or _SAME
    return _SAME if value == default else value


_MISSING, _SAME = object(), object()


def _plain(x: Any) -> Any:
    """Tuples to lists, recursively, so that JSON round-trips compare equal."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def load_toml(path: str | Path) -> RunConfig:
    """Read a run config from TOML; sections as in :class:`RunConfig` (``[task.params]`` etc.)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist; pass the path of a TOML run config")
    try:
        d = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {str(p)!r} is not valid TOML ({e}); fix the syntax and retry") from None
    return RunConfig.from_dict(d)
