"""Masks as boolean tensors, applied in place after every optimiser step, and magnitude pruning.

Pruned weights are exactly zero at all times: :meth:`Masker.apply` multiplies each prunable weight by its
0/1 mask in one fused ``_foreach_mul_`` call (no ``< eps`` tests, no re-parametrisation).
"""

from __future__ import annotations

import math

import torch

from rgnet.config import PruneConfig
from rgnet.errors import ConfigError

Masks = dict[str, torch.Tensor]   # layer name -> bool tensor shaped like the layer's weight


class Masker:
    """Holds the prunable weights of a model and their masks; ``apply()`` zeroes pruned entries."""

    def __init__(self, weights: dict[str, torch.nn.Parameter], masks: Masks):
        if set(weights) != set(masks):
            raise ValueError(f"masks for {sorted(masks)} do not match prunable layers {sorted(weights)}")
        self.names = list(weights)
        self.weights = [weights[n] for n in self.names]
        self.masks = {n: masks[n].to(device=weights[n].device, dtype=torch.bool) for n in self.names}
        self._factors = [self.masks[n].to(weights[n].dtype) for n in self.names]
        self._data = [w.detach() for w in self.weights]  # same storage, no autograd bookkeeping per step

    def apply(self) -> None:
        torch._foreach_mul_(self._data, self._factors)


def full_masks(weights: dict[str, torch.Tensor]) -> Masks:
    return {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}


def density(masks: Masks) -> float:
    """Fraction of prunable weights remaining."""
    return sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())


def layer_rates(layers: list[str], output: str, cfg: PruneConfig) -> dict[str, float | None]:
    """Per-layer pruning fraction; ``None`` marks layers pruned jointly at ``cfg.fraction`` (global scope)."""
    unknown = set(cfg.layer_fractions) - set(layers)
    if unknown:
        raise ConfigError(f"layer_fractions names unknown layer(s) {sorted(unknown)}; prunable layers are "
                          f"{', '.join(layers)}")
    rates: dict[str, float | None] = {}
    for name in layers:
        if name in cfg.layer_fractions:
            rates[name] = float(cfg.layer_fractions[name])
        elif name == output and cfg.output_fraction is not None:
            rates[name] = float(cfg.output_fraction)
        else:
            rates[name] = cfg.fraction if cfg.scope == "layerwise" else None
    return rates


def prune_count(alive: int, rate: float) -> int:
    """Number of weights to remove from ``alive`` survivors at ``rate`` (round half up, exact)."""
    return min(alive, int(math.floor(rate * alive + 0.5)))


@torch.no_grad()
def magnitude_prune(weights: dict[str, torch.Tensor], masks: Masks, output: str, cfg: PruneConfig) -> Masks:
    """Next level's masks: remove the smallest-magnitude survivors, globally or per layer (exact counts)."""
    rates = layer_rates(list(weights), output, cfg)
    new = {n: m.clone() for n, m in masks.items()}
    pooled = [n for n, r in rates.items() if r is None]
    groups = [[n] for n, r in rates.items() if r is not None] + ([pooled] if pooled else [])
    for group in groups:
        rate = cfg.fraction if rates[group[0]] is None else rates[group[0]]
        scores = torch.cat([torch.where(masks[n], weights[n].abs(), torch.inf).flatten().float()
                            for n in group])
        k = prune_count(int(torch.isfinite(scores).sum()), rate)
        if k == 0:
            continue
        drop = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
        drop[torch.topk(scores, k, largest=False, sorted=False).indices] = True
        start = 0
        for n in group:
            size = masks[n].numel()
            new[n] &= ~drop[start:start + size].view_as(masks[n])
            start += size
    return new
