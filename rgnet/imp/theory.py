"""The coarse-grained theory of one IMP level: per-layer statistics of the surviving trained weights.

Histograms live on a per-layer grid fixed at level 0 (``u`` in [-1, 1], weight = u × ``bin_scale``), so
successive levels are comparable bin by bin; values outside the grid are counted in the edge bins and in
``hist_outside``.
"""

from __future__ import annotations

import numpy as np

QUANTILES = np.array([0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99])
GRID_MARGIN = 1.5   # grid half-width = GRID_MARGIN x the largest |weight| at level 0


def bin_edges(bins: int) -> np.ndarray:
    """Edges in normalised units u, ``bins + 1`` values from -1 to 1."""
    return np.linspace(-1.0, 1.0, bins + 1)


def grid_scale(trained: np.ndarray, rewind: np.ndarray) -> float:
    """Half-width of a layer's histogram grid, set once from its dense (level-0) weights."""
    m = max(float(np.abs(trained).max(initial=0)), float(np.abs(rewind).max(initial=0)))
    return GRID_MARGIN * m if m > 0 else 1.0


def histogram(values: np.ndarray, scale: float, bins: int) -> tuple[np.ndarray, int]:
    """Counts of ``values / scale`` on the fixed grid (clipped into the edge bins) and how many were clipped."""
    u = values / scale
    outside = int(np.count_nonzero(np.abs(u) > 1))
    counts, _ = np.histogram(np.clip(u, -1, 1), bins=bin_edges(bins))
    return counts.astype(np.int64), outside


def layer_theory(trained: np.ndarray, rewind: np.ndarray, mask: np.ndarray, scale: float,
                 bins: int) -> dict[str, np.ndarray | float | int]:
    """Statistics of one layer's survivors: histograms, quantiles, moments, counts."""
    keep = mask.astype(bool).ravel()
    w = trained.ravel()[keep].astype(np.float64)
    w0 = rewind.ravel()[keep].astype(np.float64)
    out: dict = {"layer_count": int(keep.sum()), "layer_density": float(keep.mean())}
    out["hist"], out["hist_outside"] = histogram(w, scale, bins)
    out["hist_rewind"], _ = histogram(w0, scale, bins)
    if w.size == 0:
        nan = np.full(len(QUANTILES), np.nan)
        out.update(w_quantile=nan, absw_quantile=nan, w_mean=np.nan, w_std=np.nan, w_skew=np.nan,
                   w_kurtosis=np.nan, w_absmean=np.nan, rewind_std=np.nan)
        return out
    out["w_quantile"] = np.quantile(w, QUANTILES)
    out["absw_quantile"] = np.quantile(np.abs(w), QUANTILES)
    mean, std = w.mean(), w.std()
    z = (w - mean) / std if std > 0 else np.zeros_like(w)
    out.update(w_mean=mean, w_std=std, w_skew=float((z ** 3).mean()), w_kurtosis=float((z ** 4).mean() - 3),
               w_absmean=float(np.abs(w).mean()), rewind_std=float(w0.std()))
    return out


def level_theory(trained: dict[str, np.ndarray], rewind: dict[str, np.ndarray], masks: dict[str, np.ndarray],
                 scales: dict[str, float], bins: int) -> dict[str, np.ndarray]:
    """Stack :func:`layer_theory` over layers (in the order of ``masks``): arrays with a leading layer axis."""
    per = [layer_theory(trained[n], rewind[n], masks[n], scales[n], bins) for n in masks]
    return {k: np.asarray([p[k] for p in per]) for k in per[0]}
