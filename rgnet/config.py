"""Run configuration: frozen dataclasses, canonical JSON and the run_id hash.

A run is fully described by a :class:`RunConfig`. Its canonical JSON (sorted keys, defaults filled in)
is stored in every file, and ``run_id`` is a hash of it: the same config always gives the same id, so
``rgnet record`` can tell "resume this file" from "this file belongs to another experiment".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

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
    eval_every: int = 250              # evaluate on validation and test every E iterations


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
            kw[f.name] = _build(sub, d[f.name], f.name) if sub else int(d[f.name])
        return cls(**kw)

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
        if k == "milestones":
            v = tuple(int(x) for x in v)
        kw[k] = v
    return cls(**kw)


def nondefault(d: dict[str, Any]) -> dict[str, Any]:
    """The settings of a config dict that differ from the defaults, nested (empty sections dropped).

    Task parameters equal to the task's own defaults count as defaults too. Two configs describe the same
    experiment exactly when their ``nondefault`` dicts are equal, whatever fields were added since.
    """
    from rgnet.tasks import TASKS

    task = d.get("task", {})
    spec = TASKS.get(task.get("name"))
    defaults = _plain(dataclasses.asdict(RunConfig()))
    if spec is not None:
        defaults["task"]["params"] = dict(spec.defaults)
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
