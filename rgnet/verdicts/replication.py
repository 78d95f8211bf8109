"""Do transfer verdicts replicate? Two transfer matrices of one family from disjoint seeds, compared pair by pair."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import stats


def kappa(x: np.ndarray, y: np.ndarray) -> float:
    """Cohen's kappa of two binary verdict vectors."""
    po = np.mean(x == y)
    pe = np.mean(x) * np.mean(y) + np.mean(1 - x) * np.mean(1 - y)
    return float((po - pe) / (1 - pe)) if pe < 1 else float("nan")


def replication(ma: xr.Dataset, mb: xr.Dataset) -> dict:
    """Pairs (off the diagonal, unaligned sources, measured in both) of two :func:`transfer_matrix` results:
    how many each decided, how many both decided and how many of those contradict, Cohen's kappa over the pairs
    decided in both, and the split-half correlation of the pair gaps (``gap_range``: Pearson, Spearman and the
    Spearman-Brown reliability of the mean of both halves)."""
    src = [s for s in ma.source.values if "[" not in s and s in mb.source.values]
    tgt = [t for t in ma.target.values if t in mb.target.values]
    ga = ma.gap_range.sel(source=src, target=tgt).values
    gb = mb.gap_range.sel(source=src, target=tgt).values
    off = np.array([[s != t for t in tgt] for s in src]) & np.isfinite(ga) & np.isfinite(gb)
    va = ma.transfer_verdict.sel(source=src, target=tgt).values[off]
    vb = mb.transfer_verdict.sel(source=src, target=tgt).values[off]
    both = (va >= 0) & (vb >= 0)
    ga, gb = ga[off], gb[off]
    r = float(np.corrcoef(ga, gb)[0, 1]) if len(ga) > 2 else float("nan")
    return {"pairs": int(off.sum()), "decided_a": int((va >= 0).sum()), "decided_b": int((vb >= 0).sum()),
            "decided_both": int(both.sum()), "contradictions": int((both & (va != vb)).sum()),
            "kappa": kappa(va[both], vb[both]) if both.sum() else float("nan"),
            "gap_pearson": r, "gap_spearman": float(stats.spearmanr(ga, gb).statistic) if len(ga) > 2 else np.nan,
            "gap_spearman_brown": 2 * r / (1 + r)}
