"""The coarse-grained theory of one IMP level: per-layer statistics of the surviving trained weights.

Used alike by the store (which computes and records it) and by ``rgnet.rg`` (which reads it). Numpy only.

- **Histograms** live on a grid that follows the weights: per level and layer, ``u`` in [-1, 1] with
  weight = u × ``bin_scale`` and ``bin_scale`` = the largest |survivor| (trained or rewound), so nothing is
  ever clipped. (Schema-1 files used one grid fixed at level 0 and counted the clipped weights.)
- **Quantile atoms** (``w_qf``) resolve the distribution finely enough for exact Wasserstein distances:
  the sorted survivors themselves when there are at most ``QF_SIZE`` of them, otherwise the averages of
  the quantile function over ``QF_SIZE`` equal probability cells. Either way the distribution is a set of
  equally weighted atoms (NaN-padded to ``QF_SIZE``, stored as float32 like the weights themselves), and
  :func:`w1_atoms` is the exact W1 between two of them (how close that is to the sample W1: README, "Run
  files").
- Quantiles at ``QUANTILES`` and moments.
"""

from __future__ import annotations

import numpy as np

QUANTILES = np.array([0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99])
QF_SIZE = 4096   # quantile atoms per level and layer


def bin_edges(bins: int) -> np.ndarray:
    """Edges in normalised units u, ``bins + 1`` values from -1 to 1."""
    return np.linspace(-1.0, 1.0, bins + 1)


def grid_scale(*values: np.ndarray) -> float:
    """Half-width of a histogram grid that holds every one of ``values`` (1 when all are empty or zero)."""
    m = max((float(np.abs(v).max(initial=0)) for v in values), default=0.0)
    return m if m > 0 else 1.0


def histogram(values: np.ndarray, scale: float, bins: int) -> np.ndarray:
    """Counts of ``values / scale`` on the grid ``bin_edges(bins)`` (values beyond it are clipped in)."""
    counts, _ = np.histogram(np.clip(values / scale, -1, 1), bins=bins, range=(-1.0, 1.0))  # uniform: O(n)
    return counts.astype(np.int32)


def quantile_atoms(values: np.ndarray, size: int = QF_SIZE, presorted: bool = False) -> np.ndarray:
    """Equally weighted atoms (NaN-padded to ``size``) that resolve the distribution of ``values``.

    The sorted values when there are at most ``size``; else the mean of the quantile function over each of
    ``size`` equal probability cells (cell k covers t in [k/size, (k+1)/size]).
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x if presorted else np.sort(x)
    n = x.size
    if n <= size:
        return np.concatenate([x, np.full(size - n, np.nan)])
    integral = np.concatenate([[0.0], np.cumsum(x)]) / n          # int_0^t Q, exact at t = i / n
    at = np.interp(np.linspace(0, 1, size + 1), np.arange(n + 1) / n, integral)  # linear in between: exact
    return np.diff(at) * size


def sorted_quantiles(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.quantile(x, q)`` (linear interpolation) of an already sorted ``x``, without sorting again."""
    return _interpolated(lambda k: x[k], x.size, q)


def abs_quantiles(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.quantile(abs(x), q)`` of a sorted ``x``: order statistics of the merge of its two halves, found by
    bisection (|x| is never sorted: that would cost as much as the first sort)."""
    neg = int(np.searchsorted(x, 0.0))
    a, b = -x[:neg][::-1], x[neg:]   # both ascending

    def kth(k: int) -> float:  # k-th smallest (0-based) of the union of a and b
        lo, hi = max(0, k + 1 - b.size), min(k + 1, a.size)   # how many come from a
        while lo < hi:
            i = (lo + hi) // 2
            if b[k - i] > a[i]:
                lo = i + 1
            else:
                hi = i
        j = k + 1 - lo
        return max(a[lo - 1] if lo > 0 else -np.inf, b[j - 1] if j > 0 else -np.inf)

    return _interpolated(kth, x.size, q)


def _interpolated(kth, n: int, q: np.ndarray) -> np.ndarray:
    pos = np.asarray(q) * (n - 1)
    lo = np.floor(pos).astype(int)
    lower = np.array([kth(int(k)) for k in lo])
    upper = np.array([kth(int(min(k + 1, n - 1))) for k in lo])
    return lower + (pos - lo) * (upper - lower)


def w1_atoms(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Wasserstein-1 distance between two sets of equally weighted atoms (NaNs ignored).

    ``W1 = integral |F_a - F_b| dx`` over the merged support (as ``scipy.stats.wasserstein_distance``).
    """
    a, b = np.sort(a[~np.isnan(a)]), np.sort(b[~np.isnan(b)])
    if a.size == 0 or b.size == 0:
        return np.nan
    xs = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(a, xs[:-1], side="right") / a.size
    cdf_b = np.searchsorted(b, xs[:-1], side="right") / b.size
    return float(np.sum(np.abs(cdf_a - cdf_b) * np.diff(xs)))


def hist_quantile_function(counts: np.ndarray, edges: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Quantile function of a histogram (uniform density inside each bin) at probabilities ``t``."""
    total = counts.sum()
    if not np.isfinite(total) or total <= 0:
        return np.full(t.shape, np.nan)
    cdf = np.concatenate([[0.0], np.cumsum(counts)]) / total
    return np.interp(t, cdf, edges)


def layer_theory(trained: np.ndarray | None, rewind: np.ndarray, mask: np.ndarray, bins: int) -> dict:
    """Statistics of one layer's survivors: histograms on their own grid, quantile atoms, quantiles, moments.

    ``trained`` None (the level diverged): every statistic of the trained weights is that of no weights (NaN,
    empty histogram); counts, densities and the rewound values' statistics are kept.
    """
    keep = mask.astype(bool).ravel()
    # sorted once: atoms, quantiles, |w| quantiles
    x = np.sort(trained.ravel()[keep].astype(np.float64)) if trained is not None else np.empty(0)
    w0 = rewind.ravel()[keep].astype(np.float64)
    scale = grid_scale(x[:1], x[-1:], w0)
    out: dict = {"layer_count": int(keep.sum()), "layer_density": float(keep.mean()), "bin_scale": scale,
                 "hist": histogram(x, scale, bins), "hist_rewind": histogram(w0, scale, bins),
                 "w_qf": quantile_atoms(x, presorted=True)}
    if x.size == 0:
        nan = np.full(len(QUANTILES), np.nan)
        out.update(w_quantile=nan, absw_quantile=nan, w_mean=np.nan, w_std=np.nan, w_skew=np.nan,
                   w_kurtosis=np.nan, w_absmean=np.nan, rewind_std=float(w0.std()) if w0.size else np.nan)
        return out
    out["w_quantile"] = sorted_quantiles(x, QUANTILES)
    out["absw_quantile"] = abs_quantiles(x, QUANTILES)
    mean, std = x.mean(), x.std()
    z2 = ((x - mean) / std) ** 2 if std > 0 else np.zeros_like(x)
    skew = float(np.mean(z2 * (x - mean) / std)) if std > 0 else 0.0
    out.update(w_mean=mean, w_std=std, w_skew=skew, w_kurtosis=float((z2 ** 2).mean() - 3),
               w_absmean=float(np.abs(x).mean()), rewind_std=float(w0.std()))
    return out


def layer_relevance(trained: np.ndarray | None, mask: np.ndarray) -> dict:
    """Per unit of ``W[out, in, ...]``: the surviving fraction of its incoming (``fan_in``, rows) and outgoing
    (``fan_out``, columns) weights, and their summed |w| (NaN without trained weights: a diverged level)."""
    m = mask.astype(bool).reshape(mask.shape[0], mask.shape[1], -1)
    a = np.abs(trained.reshape(m.shape).astype(np.float64)) * m if trained is not None else None
    return {"fan_in": m.mean(axis=(1, 2)), "fan_out": m.mean(axis=(0, 2)),
            "fan_in_mass": a.sum(axis=(1, 2)) if a is not None else np.full(m.shape[0], np.nan),
            "fan_out_mass": a.sum(axis=(0, 2)) if a is not None else np.full(m.shape[1], np.nan)}


def unit_count(shapes) -> int:
    """The size of the ``unit`` axis: the most units any layer has on either side of its weight."""
    return max(max(s[0], s[1]) for s in shapes)


def level_theory(trained: dict[str, np.ndarray] | None, rewind: dict[str, np.ndarray], masks: dict[str, np.ndarray],
                 bins: int) -> dict[str, np.ndarray]:
    """Stack :func:`layer_theory` and :func:`layer_relevance` over layers (in the order of ``masks``): arrays with
    a leading layer axis (per-unit arrays NaN-padded to :func:`unit_count`). ``trained`` None: a diverged level."""
    per = [layer_theory(None if trained is None else trained[n], rewind[n], masks[n], bins) for n in masks]
    out = {k: np.asarray([p[k] for p in per]) for k in per[0]}
    rel = [layer_relevance(None if trained is None else trained[n], masks[n]) for n in masks]
    size = unit_count([m.shape for m in masks.values()])
    for k in rel[0]:
        out[k] = np.stack([np.pad(r[k].astype(float), (0, size - len(r[k])), constant_values=np.nan) for r in rel])
    return out
