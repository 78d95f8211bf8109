"""Per-run magnitude pruning of a stack: each run's thresholds come from its own weights only."""

from __future__ import annotations

from rgnet.config import PruneConfig
from rgnet.engine.masks import Masks, magnitude_prune
from rgnet.engine.train import Trained


def next_masks(trained: list[Trained], masks: list[Masks], outputs: list[str], cfgs: list[PruneConfig]) -> list[Masks]:
    """The next level's masks of every run (:func:`rgnet.engine.masks.magnitude_prune`, global or layer-wise as
    each run's ``cfgs`` says); a run that diverged keeps its masks (non-finite weights rank nothing)."""
    return [m if t.result.diverged_at is not None else magnitude_prune(t.weights, m, out, cfg)
            for t, m, out, cfg in zip(trained, masks, outputs, cfgs)]
