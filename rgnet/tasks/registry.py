"""The task registry: a task's loader, its parameters with defaults and ranges, its label and its symmetries."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rgnet.config import TASK_DEFAULTS, TaskConfig, check_like
from rgnet.errors import ConfigError


@dataclass
class Task:
    """Arrays of one task. ``x_*`` float32 of shape ``(n, *in_shape)``, ``y_*`` int64 class labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def fingerprint(self) -> str:
        """SHA-256 (16 hex digits) of all arrays: proves two runs saw the same data and split."""
        h = hashlib.sha256()
        for a in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]

    def summary(self) -> dict[str, Any]:
        """What the store records about the data: sizes, shape, classes, fingerprint."""
        return {"n_train": len(self.y_train), "n_val": len(self.y_val), "n_test": len(self.y_test),
                "in_shape": list(self.in_shape), "n_classes": self.n_classes,
                "fingerprint": self.fingerprint(), **self.meta}


@dataclass(frozen=True)
class TaskSpec:
    load: Callable[..., Task]     # load(data_root: Path | None, **params) -> Task
    defaults: dict[str, Any]      # every valid parameter with its default (which also fixes its type)
    doc: str = ""
    needs_files: bool = False
    ranges: dict[str, tuple[Callable[[Any], bool], str]] = field(default_factory=dict)
    # Symmetries the task declares: parameter -> feature_order(params), the order of the raw input features
    # the task presents (x = raw[:, order]); two tasks that differ only in such parameters are one task with
    # its inputs permuted.
    input_permutations: dict[str, Callable[[dict], np.ndarray]] = field(default_factory=dict)


TASKS: dict[str, TaskSpec] = {}


def register(name: str, defaults: dict[str, Any], doc: str = "", needs_files: bool = False,
             ranges: dict[str, tuple[Callable[[Any], bool], str]] | None = None,
             input_permutations: dict[str, Callable[[dict], np.ndarray]] | None = None):
    """Decorator: ``@register("mnist1d", defaults)`` on ``load(data_root, **params) -> Task``.

    ``ranges``: ``{param: (is_valid, "what valid means")}`` checked before anything is generated or written.
    """

    def deco(fn):
        TASKS[name] = TaskSpec(fn, dict(defaults), doc, needs_files, dict(ranges or {}), dict(input_permutations or {}))
        TASK_DEFAULTS[name] = dict(defaults)
        return fn

    return deco


def resolve_params(cfg: TaskConfig) -> dict[str, Any]:
    """The task's parameters with defaults filled in, each checked for type and range (:class:`ConfigError`)."""
    spec = _spec(cfg.name)
    unknown = set(cfg.params) - set(spec.defaults)
    if unknown:
        raise ConfigError(f"unknown parameter(s) {sorted(unknown)} for task {cfg.name!r}; valid "
                          f"parameters are {', '.join(sorted(spec.defaults)) or 'none'}")
    params = {**spec.defaults, **cfg.params}
    for k, v in cfg.params.items():
        check_like(v, spec.defaults[k], f"task parameter {k}")
    for k, (ok, valid) in spec.ranges.items():
        if not ok(params[k]):
            raise ConfigError(f"task parameter {k}={params[k]!r} is out of range for {cfg.name!r}: it must be "
                              f"{valid}")
    return params


def positive(v) -> bool:
    return v >= 1


def non_negative(v) -> bool:
    return v >= 0


def load_task(cfg: TaskConfig, data_root: str | Path | None = None) -> Task:
    """Load or generate the task named by ``cfg``; file-based tasks look in ``data_root`` or ``$RGNET_DATA``."""
    spec = _spec(cfg.name)
    params = resolve_params(cfg)
    root = data_root if data_root is not None else os.environ.get("RGNET_DATA")
    return spec.load(Path(root) if root else None, **params)


def split_validation(x: np.ndarray, y: np.ndarray, val_size: int, seed: int):
    """Carve a fixed validation set of ``val_size`` examples out of a training set (seeded permutation)."""
    if not 0 < val_size < len(y):
        raise ConfigError(f"val_size={val_size} must be between 1 and the training-set size {len(y) - 1}")
    perm = np.random.default_rng(seed).permutation(len(y))
    val, tr = perm[:val_size], np.sort(perm[val_size:])
    return x[tr], y[tr], x[np.sort(val)], y[np.sort(val)]


def _spec(name: str) -> TaskSpec:
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; valid tasks are {', '.join(sorted(TASKS))}")
    return TASKS[name]


def task_label(config: dict | str, labels: dict[str, str] | None = None) -> str:
    """A short name for a run's task: its name plus the parameters that differ from the task's defaults
    (``mnist1d(shuffle_seq=true)``), renamed through ``labels`` if it is a key there."""
    cfg = json.loads(config) if isinstance(config, str) else config
    name, params = cfg["task"]["name"], cfg["task"]["params"]
    defaults = TASKS[name].defaults if name in TASKS else {}
    diff = {k: v for k, v in sorted(params.items()) if defaults.get(k) != v}
    label = name + ("(" + ",".join(f"{k}={json.dumps(v)}" for k, v in diff.items()) + ")" if diff else "")
    return (labels or {}).get(label, label)


def input_order(cfg: TaskConfig) -> np.ndarray | None:
    """The order of the raw input features the task presents (``x = raw[:, order]``), composed over the
    parameters it declares as input permutations; None when it declares none."""
    spec = _spec(cfg.name)
    if not spec.input_permutations:
        return None
    params = resolve_params(cfg)
    order = None
    for fn in spec.input_permutations.values():
        o = fn(params)
        order = o if order is None else order[o]
    return order


def symmetric(a: TaskConfig, b: TaskConfig) -> list[str] | None:
    """The parameters in which tasks ``a`` and ``b`` differ, if every one of them is a declared input
    permutation of the task (the two are then one task up to a permutation of its inputs); else None."""
    if a.name != b.name or a.name not in TASKS:
        return None
    spec = TASKS[a.name]
    pa, pb = {**spec.defaults, **a.params}, {**spec.defaults, **b.params}
    diff = sorted(k for k in set(pa) | set(pb) if pa.get(k) != pb.get(k))
    return diff if diff and all(k in spec.input_permutations for k in diff) else None
