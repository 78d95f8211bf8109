"""One IMP level of K runs of one architecture, trained at once as a stacked model.

Each run keeps what it would have alone: its starting weights, masks, data (``DeviceData``; runs of different
tasks with the same shapes may share a stack), data order (its own seeded stream), optimiser state (one fused
step updates all stacked parameters, elementwise), evaluations, early-stopping pick and divergence check. The
pieces are those of :mod:`rgnet.engine.loop`; only the model call is batched. A single run, and models that do
not stack (:func:`~rgnet.engine.stacked.stackable`), are trained one run after another with
:func:`rgnet.engine.loop.train_level`, so every architecture goes through the same call.

Nothing process-wide is touched here (no thread count, no global RNG): the caller owns those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rgnet.config import TrainConfig, eval_iterations
from rgnet.engine.loop import (
    EVAL_CHUNK,
    BatchOrder,
    DeviceData,
    LevelResult,
    add_metrics,
    level_result,
    lr_at,
    new_curves,
    train_level,
)
from rgnet.engine.masks import Masker, Masks
from rgnet.engine.optim import FusedOptimizer
from rgnet.engine.stacked import StackedMLP, stackable
from rgnet.store.schema import SPLITS

EVAL_ROWS = 1 << 16   # examples x runs per evaluation forward pass (bounds its memory at large K)
OnEval = Callable[[int, dict[str, float], int], None]  # (iteration, metrics, run index)


@dataclass
class Trained:
    """One run's outcome of a level: curves, rewind point (if captured), trained state and prunable weights."""

    result: LevelResult
    captured: dict[str, torch.Tensor] | None   # state dict at ``capture_at`` (None if not reached)
    trained: dict[str, np.ndarray]             # state dict at the end (or where training diverged)
    weights: dict[str, torch.Tensor]           # prunable weights of ``trained``, on the device


class StackData:
    """The runs' data: the distinct :class:`DeviceData` (stacked if there are several) and which each run uses."""

    def __init__(self, data: list[DeviceData]):
        distinct: list[DeviceData] = []
        which = []
        for d in data:
            j = next((i for i, u in enumerate(distinct) if u is d), None)
            if j is None:
                distinct.append(d)
                j = len(distinct) - 1
            which.append(j)
        for key in distinct[0].x:
            shapes = {(tuple(d.x[key].shape), tuple(d.y[key].shape)) for d in distinct}
            if len(shapes) > 1:
                raise ValueError(f"runs of one stack need data of one shape; {key} has shapes {sorted(shapes)}")
        self.k = len(data)
        self.n_train = len(distinct[0].y["train"])
        if len(distinct) == 1:
            self.which = None
            self.x, self.y = distinct[0].x, distinct[0].y
        else:  # (D, n, ...) arrays; run k reads row which[k]
            self.which = torch.tensor(which, device=distinct[0].y["train"].device)
            self.x = {k: torch.stack([d.x[k] for d in distinct]) for k in distinct[0].x}
            self.y = {k: torch.stack([d.y[k] for d in distinct]) for k in distinct[0].y}

    def rows(self, key: str, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Examples ``idx`` (``(K, B)``, a row per run) of split ``key``: x ``(K, B, ...)``, y ``(K, B)``."""
        flat = idx.flatten() if self.which is None else (idx + self.which[:, None] * self.y[key].shape[1]).flatten()
        x, y = self.x[key], self.y[key]
        if self.which is not None:  # (D, n, ...) as (D * n, ...)
            x, y = x.flatten(0, 1), y.flatten(0, 1)
        return x.index_select(0, flat).view(*idx.shape, *x.shape[1:]), y.index_select(0, flat).view(idx.shape)

    def chunk(self, key: str, runs: slice, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Examples ``lo:hi`` of split ``key`` for ``runs``: x ``(R, n, ...)``, y ``(R, n)``."""
        if self.which is None:
            x, y = self.x[key][lo:hi], self.y[key][lo:hi]
            r = len(range(self.k)[runs])
            return x.expand(r, *x.shape), y.expand(r, *y.shape)
        d = self.which[runs]
        return self.x[key][d, lo:hi], self.y[key][d, lo:hi]

    def size(self, key: str) -> int:
        return self.y[key].shape[-1]


@torch.no_grad()
def evaluate_stack(net: StackedMLP, data: StackData, key: str) -> tuple[list[float], list[float]]:
    """Per run: mean cross-entropy and accuracy over split ``key``, chunked over examples exactly as
    :func:`rgnet.engine.loop.evaluate` does (so each run's sums are the same), and over runs to bound memory."""
    n = data.size(key)
    chunk = min(n, EVAL_CHUNK)
    group = max(1, EVAL_ROWS // max(chunk, 1))
    dev = data.y[key].device
    loss = torch.zeros(net.k, device=dev, dtype=torch.float64)
    correct = torch.zeros(net.k, device=dev, dtype=torch.int64)
    for r0 in range(0, net.k, group):
        runs = slice(r0, min(net.k, r0 + group))
        for i in range(0, n, EVAL_CHUNK):
            x, y = data.chunk(key, runs, i, i + EVAL_CHUNK)
            add_metrics(loss[runs], correct[runs], net(x, runs), y)
    return (loss / n).tolist(), (correct.double() / n).tolist()


def train_stack(template: nn.Module, states: list[dict[str, np.ndarray]], masks: list[Masks],
                data: list[DeviceData], cfg: TrainConfig, streams: list[int], start: int = 0,
                capture_at: int | None = None, on_eval: OnEval | None = None,
                batched: bool | None = None) -> list[Trained]:
    """Train K runs from ``states`` (state dicts of ``template``'s architecture) with their ``masks``, ``data``
    and data-order ``streams``, from iteration ``start`` to ``cfg.steps``; one :class:`Trained` per run.

    Semantics per run are those of :func:`rgnet.engine.loop.train_level` (pruned weights zeroed after every
    step, a run stops at the first evaluation that finds it non-finite; the others go on).
    ``batched``: use the stacked model (default: when there are several runs; one run alone takes
    ``train_level``, whose Python overhead is smaller, with the same bits).
    """
    if not (len(states) == len(masks) == len(data) == len(streams)) or not states:
        raise ValueError("train_stack needs one state, mask set, data set and stream per run")
    if not stackable(template) or not (len(states) > 1 if batched is None else batched):
        return [_train_alone(template, *run, cfg, start, capture_at, on_eval, k)
                for k, run in enumerate(zip(states, masks, data, streams))]
    dev = data[0].x["train"].device
    net = StackedMLP(template, states, dev)
    k_runs, names = net.k, list(masks[0])
    stacked_masks = {n: torch.stack([m[n].to(dev) for m in masks]) for n in names}
    masker = Masker({n: net.layers[n] for n in names}, stacked_masks)
    # on CPU each run's slice goes to the optimiser kernel as its own tensor (the bits of a run alone); CUDA's
    # batched products differ from single ones anyway, so there the stacked tensors go whole (fewer launches)
    opt = FusedOptimizer(net.parameters(), cfg, per_run=dev.type == "cpu")
    sdata = StackData(data)
    order = BatchOrder(sdata.n_train, cfg.batch_size, torch.tensor(streams, dtype=torch.int64), dev)
    its = eval_iterations(cfg)
    eval_at = set(its.tolist())
    curves = [new_curves(len(its)) for _ in range(k_runs)]
    alive = [True] * k_runs
    diverged_at: list[int | None] = [None] * k_runs
    captured: list[dict | None] = [None] * k_runs
    ended: list[tuple[dict, dict] | None] = [None] * k_runs   # (state, weights) where a run diverged
    lrs = [lr_at(cfg, it + 1) for it in range(cfg.steps)]
    masker.apply()

    def evaluate_all(it: int) -> None:
        j = int(np.searchsorted(its, it))
        metrics = {}
        for s, key in (("train", "train_eval"), ("val", "val"), ("test", "test")):
            metrics[f"{s}_loss"], metrics[f"{s}_acc"] = evaluate_stack(net, sdata, key)
        finite = net.finite().tolist()
        for k in range(k_runs):
            if not alive[k]:
                continue
            for name, values in metrics.items():
                curves[k][name][j] = values[k]
            if on_eval is not None:
                on_eval(it, {name: c[j] for name, c in curves[k].items()}, k)
            if not (finite[k] and all(np.isfinite(curves[k][f"{s}_loss"][j]) for s in SPLITS)):
                alive[k], diverged_at[k] = False, it
                ended[k] = (numpy_state_dict(net.state(k)), {n: w.detach()[k].clone() for n, w in net.layers.items()})

    for it in range(start, cfg.steps + 1):
        if it == capture_at:
            captured = [{n: v.clone() for n, v in net.state(k).items()} if alive[k] else None for k in range(k_runs)]
        if it in eval_at:
            evaluate_all(it)
            if not any(alive):
                break
        if it == cfg.steps:
            break
        x, y = sdata.rows("train", order.batch(it - start))
        out = net(x)
        # the sum of the runs' mean losses: each run's gradient is that of its own mean loss
        loss = F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none").view(k_runs, -1).mean(1).sum()
        opt.zero_grad()
        loss.backward()
        opt.step(lrs[it])
        masker.apply()
    out = []
    for k in range(k_runs):
        state, weights = ended[k] or (numpy_state_dict(net.state(k)), {n: w.detach()[k] for n, w in net.layers.items()})
        out.append(Trained(level_result(its, curves[k], cfg, start, diverged_at[k]), captured[k], state, weights))
    return out


def _train_alone(model: nn.Module, state, masks, data, stream, cfg, start, capture_at, on_eval, k) -> Trained:
    """One run alone (or of an architecture that does not stack): :func:`train_level` on ``model`` loaded with
    ``state``."""
    model.load_state_dict({n: torch.from_numpy(v) for n, v in state.items()})
    layers = {n: model.get_submodule(n).weight for n in masks}
    report = None if on_eval is None else (lambda it, m: on_eval(it, m, k))
    result, captured = train_level(model, Masker(layers, masks), data, cfg, stream, start=start,
                                   capture_at=capture_at, on_eval=report)
    weights = {n: w.detach().clone() for n, w in layers.items()}
    return Trained(result, captured, numpy_state_dict(model.state_dict()), weights)


def numpy_state_dict(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Host copies of a state dict's tensors."""
    return {n: v.detach().cpu().numpy().copy() for n, v in state.items()}
