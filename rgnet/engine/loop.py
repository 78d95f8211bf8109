"""Masked training of one IMP level, on tensors that already live on the device (no DataLoader).

The loop is split into pure pieces — :class:`BatchOrder` (the data order, from a seeded stream, one epoch at a
time; :func:`batch_indices` materialises it), :func:`lr_at` (the schedule), :func:`add_metrics`, the early-stopping
pick and the fused optimiser — which the batched engine (:mod:`rgnet.engine`) reuses for many runs at once,
replacing only the per-step model call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rgnet.config import EARLY_STOP, TrainConfig, eval_iterations
from rgnet.engine.masks import Masker
from rgnet.engine.optim import FusedOptimizer
from rgnet.engine.seeds import epoch_permutation
from rgnet.errors import ConfigError
from rgnet.store.schema import METRIC_NAMES, SPLITS
from rgnet.tasks import Task

EVAL_CHUNK = 4096      # examples per forward pass when evaluating
TRAIN_EVAL_MAX = 5000  # training-set metrics use a fixed subset of at most this many examples


@dataclass
class DeviceData:
    """A task's arrays as tensors on one device; ``train_eval`` is the fixed subset used for train metrics."""

    x: dict[str, torch.Tensor]
    y: dict[str, torch.Tensor]

    @classmethod
    def from_task(cls, task: Task, device: torch.device) -> "DeviceData":
        arrays = {"train": (task.x_train, task.y_train), "val": (task.x_val, task.y_val),
                  "test": (task.x_test, task.y_test)}
        x = {k: torch.as_tensor(np.ascontiguousarray(a), device=device) for k, (a, _) in arrays.items()}
        y = {k: torch.as_tensor(np.ascontiguousarray(b), device=device) for k, (_, b) in arrays.items()}
        n = min(len(task.y_train), TRAIN_EVAL_MAX)
        x["train_eval"], y["train_eval"] = x["train"][:n], y["train"][:n]
        return cls(x, y)


@dataclass
class LevelResult:
    """Learning curves at ``iterations`` (NaN before the start iteration and after a divergence) and the
    early-stop index (by ``TrainConfig.early_stop``); ``diverged_at`` is the first evaluation with a
    non-finite loss or weight (else None)."""

    iterations: np.ndarray                 # (eval,)
    curves: dict[str, np.ndarray]          # "{split}_{loss|acc}" -> (eval,)
    stop: int                              # index into iterations: the early-stopping criterion's pick
    diverged_at: int | None = None

    @property
    def stop_iteration(self) -> int:
        return int(self.iterations[self.stop])

    def at_stop(self) -> dict[str, float]:
        return {k: float(v[self.stop]) for k, v in self.curves.items()}


def batch_indices(n: int, batch: int, start: int, stop: int, stream: int, device=None) -> torch.Tensor:
    """Minibatch indices for iterations ``start+1 .. stop``: shuffled epochs, last partial batch dropped.

    Shape ``(stop - start, batch)``; the order depends only on the data ``stream`` (seeded from seed, level,
    branch; see :func:`rgnet.engine.seeds.epoch_permutation`) and is the same on every device.
    """
    per_epoch = n // batch
    if per_epoch == 0:
        raise ConfigError(f"batch_size={batch} is larger than the training set ({n} examples); lower it")
    steps = stop - start
    epochs = -(-steps // per_epoch)
    perms = [epoch_permutation(stream, e, n, device)[: per_epoch * batch] for e in range(epochs)]
    return torch.cat(perms).view(-1, batch)[:steps]


class BatchOrder:
    """The rows of :func:`batch_indices` one step at a time, for one stream or a ``(K,)`` tensor of streams.

    Only the current epoch's permutation is held (generated on the device when the epoch begins), so a level
    never materialises all its indices and the step never waits for the host. ``batch(i)`` is the minibatch of
    step ``start + i + 1``: shape ``(batch,)`` or ``(K, batch)``.
    """

    def __init__(self, n: int, batch: int, stream: int | torch.Tensor, device=None):
        self.per_epoch = n // batch
        if self.per_epoch == 0:
            raise ConfigError(f"batch_size={batch} is larger than the training set ({n} examples); lower it")
        self.n, self.size, self.device = n, batch, device
        self.stream = torch.as_tensor(stream, dtype=torch.int64, device=device)
        self.epoch, self.perm = -1, None

    def batch(self, i: int) -> torch.Tensor:
        epoch, j = divmod(i, self.per_epoch)
        if epoch != self.epoch:
            self.epoch, self.perm = epoch, epoch_permutation(self.stream, epoch, self.n, self.device)
        return self.perm[..., j * self.size:(j + 1) * self.size]


def lr_at(cfg: TrainConfig, it: int) -> float:
    """Learning rate for iteration ``it`` (1-based): linear warm-up, then ×gamma at each milestone."""
    lr = cfg.lr * min(1.0, it / cfg.warmup) if cfg.warmup else cfg.lr
    return lr * cfg.gamma ** sum(it > m for m in cfg.milestones)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a whole split, in chunks."""
    was_training = model.training
    model.eval()
    loss = torch.zeros((), device=x.device, dtype=torch.float64)
    correct = torch.zeros((), device=x.device, dtype=torch.int64)
    for i in range(0, len(y), EVAL_CHUNK):
        add_metrics(loss, correct, model(x[i:i + EVAL_CHUNK]), y[i:i + EVAL_CHUNK])
    model.train(was_training)
    n = len(y)
    return float(loss) / n, float(correct) / n


def add_metrics(loss: torch.Tensor, correct: torch.Tensor, out: torch.Tensor, y: torch.Tensor) -> None:
    """Add a chunk's summed cross-entropy (float64) and number of correct predictions, in place.

    ``out`` is ``(n, classes)`` with 0-d ``loss``/``correct``, or ``(R, n, classes)`` for R runs with ``(R,)``
    ones. On CPU each run's loss is summed by the same call as a single run's (a batched sum rounds
    differently); on a GPU, where stacked products round differently anyway, by one batched call (R calls
    would cost R kernel launches per chunk at every evaluation).
    """
    correct += (out.argmax(-1) == y).sum(-1)
    if out.dim() == 2:
        loss += F.cross_entropy(out, y, reduction="sum").double()
    elif out.device.type != "cpu":
        loss += F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none").view(y.shape).sum(1).double()
    else:
        for r in range(out.shape[0]):
            loss[r] += F.cross_entropy(out[r], y[r], reduction="sum").double()


def new_curves(n_evals: int) -> dict[str, np.ndarray]:
    """NaN learning curves ``{split}_{loss|acc}`` for ``n_evals`` evaluation points."""
    return {name: np.full(n_evals, np.nan) for name in METRIC_NAMES}


def level_result(its: np.ndarray, curves: dict, cfg: TrainConfig, start: int, diverged_at: int | None) -> LevelResult:
    """The learning curves of a level with its early-stop pick (the start evaluation if none is finite)."""
    stop = stop_index(curves, cfg.early_stop, default=int(np.searchsorted(its, start)))
    return LevelResult(its, curves, stop, diverged_at)


def train_level(model: nn.Module, masker: Masker, data: DeviceData, cfg: TrainConfig, stream: int,
                start: int = 0, capture_at: int | None = None,
                on_eval: Callable[[int, dict[str, float]], None] | None = None) -> tuple[LevelResult, dict | None]:
    """Train the masked model from iteration ``start`` to ``cfg.steps``.

    Returns the learning curves and, if ``capture_at`` is given, a copy of the state dict after that many
    iterations (the rewind point; ``capture_at = 0`` is the state before training). Pruned weights are
    zeroed after every optimiser step. Training stops at the first evaluation that finds a non-finite loss or
    weight (checked only there, so the step itself never waits for the device); the result says where.
    """
    device = data.x["train"].device
    its = eval_iterations(cfg)
    curves = new_curves(len(its))
    opt = FusedOptimizer(model.parameters(), cfg)
    order = BatchOrder(len(data.y["train"]), cfg.batch_size, stream, device)
    x, y = data.x["train"], data.y["train"]
    captured = None
    eval_at = set(its.tolist())
    masker.apply()
    model.train()

    def evaluate_all(it: int) -> bool:
        """Record the metrics at ``it``; False if the network has diverged."""
        j = int(np.searchsorted(its, it))
        for s, key in (("train", "train_eval"), ("val", "val"), ("test", "test")):
            curves[f"{s}_loss"][j], curves[f"{s}_acc"][j] = evaluate(model, data.x[key], data.y[key])
        if on_eval is not None:
            on_eval(it, {k: v[j] for k, v in curves.items()})
        return all(np.isfinite(curves[f"{s}_loss"][j]) for s in SPLITS) and finite(model)

    diverged_at = None
    lrs = [lr_at(cfg, it + 1) for it in range(cfg.steps)]
    for it in range(start, cfg.steps + 1):
        if it == capture_at:
            captured = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if it in eval_at and not evaluate_all(it):
            diverged_at = it
            break
        if it == cfg.steps:
            break
        batch = order.batch(it - start)
        loss = F.cross_entropy(model(x[batch]), y[batch])
        opt.zero_grad()
        loss.backward()
        opt.step(lrs[it])
        masker.apply()
    return level_result(its, curves, cfg, start, diverged_at), captured


def stop_index(curves: dict[str, np.ndarray], criterion: str, default: int = 0) -> int:
    """The evaluation that counts as the level's trained network (only finite evaluations are candidates).

    ``val_acc``: maximum validation accuracy, ties broken by the lower validation loss, then the earlier
    evaluation; ``val_loss``: minimum validation loss, the earlier evaluation on ties.
    """
    loss, acc = curves["val_loss"], curves["val_acc"]
    valid = np.flatnonzero(np.isfinite(loss) & np.isfinite(acc))
    if valid.size == 0:
        return default
    if criterion == "val_loss":
        return int(valid[np.argmin(loss[valid])])
    if criterion == "val_acc":
        return int(valid[np.lexsort((valid, loss[valid], -acc[valid]))[0]])
    raise ConfigError(f"unknown early-stopping criterion {criterion!r}; valid criteria are {', '.join(EARLY_STOP)}")


def finite(model: nn.Module) -> bool:
    """Whether every parameter and buffer of ``model`` is finite (one device synchronisation)."""
    tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())
