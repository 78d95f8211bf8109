"""Input features: the permutation between two tasks, estimated from their data alone (graph matching)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from rgnet.errors import ConfigError

INPUT_METHODS = ("qap", "faq", "stats")
MIN_CONFIDENCE = 5.0   # held-out z above random permutations; structure-free pairs score about N(0, 1)


def align_inputs(x_source, x_target, y_source=None, y_target=None, *, method: str = "qap", starts: int = 16,
                 n_random: int = 1000, seed: int = 0) -> xr.Dataset:
    """The permutation of input features that carries the source task's frame to the target's, and whether
    the data identify it.

    Evidence, each term in units of its standard deviation over uniformly random permutations: the
    feature-feature correlations (graph matching, sum over i != j of C_target[i, j] C_source[p_i, p_j]), per-feature
    statistics (mean, std, skewness and, with labels, the mean and std in every class both tasks have; a Gaussian
    log-likelihood ratio that the two features are one, with sampling standard errors). The confidence is
    cross-fitted: the permutation fitted on one half of the samples is scored on the other half, both ways, so
    that what the search fits to noise does not count.

    Parameters
    ----------
    x_source, x_target : array (sample, *in_shape)
        Inputs of the two tasks (any sample counts; samples need not correspond). Flattened to features.
    y_source, y_target : array (sample,), optional
        Class labels; when both are given, class-conditional feature statistics are evidence.
    method : str
        ``"qap"`` (default): the full search. For comparison only: ``"faq"`` — FAQ from the barycentre on the
        correlations alone; ``"stats"`` — ``linear_sum_assignment`` of the per-feature statistics alone.
    starts : int
        Random starts of the graph matching, besides the barycentre and the two descriptor starts.
    n_random : int
        Uniformly random permutations forming the reference of every z score.
    seed : int
        Seeds the random starts, the halves and the random permutations (the result is deterministic).

    Returns
    -------
    xr.Dataset
        ``permutation(feature)``: the source feature matched to each target feature, fitted on all samples;
        ``stable(feature)``: both halves' fits agree with it. Scalars: ``confidence`` (the held-out z score of the
        evidence, mean of both halves), ``agreement`` (fraction of features the halves match alike),
        ``identifiable`` (``confidence >= MIN_CONFIDENCE``); ``fit_z`` (the in-sample z score, inflated by the
        search); of the correlations alone: ``objective``, ``cosine`` (1 = identical structure),
        ``identity_objective``.
    """
    if method not in INPUT_METHODS:
        raise ConfigError(f"input alignment method must be one of {', '.join(INPUT_METHODS)}, got {method!r}")
    xs, xt = _features(x_source), _features(x_target)
    if xs.shape[1] != xt.shape[1]:
        raise ConfigError(f"input features differ: the source task has {xs.shape[1]}, the target task "
                          f"{xt.shape[1]}; input alignment needs tasks with the same number of input features")
    if len(xs) < 6 or len(xt) < 6:
        raise ConfigError("input alignment needs at least 6 samples per task (it fits on halves)")
    ys, yt = (None, None) if y_source is None or y_target is None else (np.asarray(y_source), np.asarray(y_target))
    rng = np.random.default_rng(seed)
    full = _Evidence(xs, xt, ys, yt, n_random, rng)
    perm = _search(full, method, starts, rng)
    halves = [_halves(len(xs), rng), _halves(len(xt), rng)]
    fits, held = [], []
    for k in (0, 1):
        part = [halves[0][k], halves[1][k]]
        other = [halves[0][1 - k], halves[1][1 - k]]
        fit = _Evidence(xs[part[0]], xt[part[1]], _take(ys, part[0]), _take(yt, part[1]), n_random, rng)
        fits.append(_search(fit, method, starts, rng))
        held.append(_Evidence(xs[other[0]], xt[other[1]], _take(ys, other[0]), _take(yt, other[1]), n_random,
                              rng).z(fits[-1]))
    confidence = float(np.mean(held))
    a, b = full.a, full.b
    obj = _qap_objective(a, b, perm)
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    out = xr.Dataset(
        {"permutation": ("feature", perm.astype(np.int64),
                         {"long_name": "source feature matched to each target feature: x_target[:, j] ~ "
                                       "x_source[:, permutation[j]]"}),
         "stable": ("feature", (fits[0] == perm) & (fits[1] == perm),
                    {"long_name": "the fits on either half of the samples match this feature alike"}),
         "confidence": ((), confidence,
                        {"long_name": "held-out evidence of the permutation fitted on the other half of the samples, "
                                      "in standard deviations above random permutations (mean of both halves)",
                         "units": "1"}),
         "agreement": ((), float(np.mean(fits[0] == fits[1])),
                       {"long_name": "fraction of features the two halves' fits match alike", "units": "1"}),
         "identifiable": ((), confidence >= MIN_CONFIDENCE,
                          {"long_name": f"confidence >= {MIN_CONFIDENCE:g} (the data identify the permutation)"}),
         "fit_z": ((), full.z(perm), {"long_name": "in-sample evidence above random permutations (inflated by the "
                                                   "search: fits noise)", "units": "1"}),
         "objective": ((), obj, {"long_name": "sum over i != j of C_target[i, j] C_source[p_i, p_j]", "units": "1"}),
         "cosine": ((), obj / norm if norm else np.nan,
                    {"long_name": "cosine between the off-diagonal correlations after alignment", "units": "1"}),
         "identity_objective": ((), _qap_objective(a, b, np.arange(len(a))),
                                {"long_name": "objective without permutation", "units": "1"}),
         },
        coords={"feature": np.arange(len(perm))})
    out.attrs.update(method=_describe(method, starts), seed=seed,
                     evidence="correlations, feature statistics" + (" by class" if ys is not None else ""))
    return out


def _take(y, idx):
    return None if y is None else y[idx]


def _halves(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2:])


class _Evidence:
    """The terms of the objective on one sample of both tasks, each scaled by its spread over random permutations:
    ``J(p) = Q(p) / sd_Q + L(p) / sd_L``, Q quadratic (correlations), L linear (``lin[target, source]``)."""

    def __init__(self, xs, xt, ys, yt, n_random: int, rng: np.random.Generator):
        self.a, self.b = _correlation(xt), _correlation(xs)
        dt, st = _feature_stats(xt, yt, ys)
        ds, ss = _feature_stats(xs, ys, yt)
        self.stats = -0.5 * (((dt[:, None, :] - ds[None, :, :]) ** 2) / (st[:, None, :] ** 2 + ss[None, :, :] ** 2)
                             ).sum(-1)
        d = len(self.a)
        rand = [rng.permutation(d) for _ in range(n_random)]
        q = np.array([_qap_objective(self.a, self.b, p) for p in rand])
        lin = np.array([self.stats[np.arange(d), p].sum() for p in rand])
        self.wq, self.wl = _inverse(q.std(ddof=1)), _inverse(lin.std(ddof=1))
        self.lin = self.wl * self.stats
        j = self.wq * q + self.wl * lin
        self.mean, self.sd = j.mean(), j.std(ddof=1)

    def j(self, perm) -> float:
        return self.wq * _qap_objective(self.a, self.b, perm) + self.wl * self.stats[np.arange(len(perm)), perm].sum()

    def z(self, perm) -> float:
        return float((self.j(perm) - self.mean) / self.sd) if self.sd > 0 else 0.0


def _inverse(s: float) -> float:
    return 1.0 / s if s > 0 else 0.0


def _search(ev: _Evidence, method: str, starts: int, rng: np.random.Generator) -> np.ndarray:
    """The permutation maximising the evidence (``method="qap"``), or one of the comparison estimators."""
    from scipy.optimize import linear_sum_assignment, quadratic_assignment  # noqa: PLC0415

    a, b = ev.a, ev.b
    d = len(a)
    by_stats = linear_sum_assignment(-ev.lin)[1]
    if method == "stats":
        return by_stats
    if method == "faq":
        return quadratic_assignment(a, b, method="faq", options={"maximize": True, "rng": rng}).col_ind
    eye = np.eye(d)
    found = [by_stats]
    for p0 in ["barycenter", eye[by_stats], eye[_assign(_row_signature(a), _row_signature(b))]] \
            + ["randomized"] * starts:
        found.append(quadratic_assignment(a, b, method="faq", options={"maximize": True, "P0": p0, "rng": rng}).col_ind)
    # FAQ sees the correlations only and stops at a local optimum of its relaxation; pairwise swaps on the whole
    # evidence from every start reach the planted permutation where FAQ alone does not (README: aligned transfer).
    # The tickets' input relevance is no evidence here: on MNIST-1D pairs it moved up to 4 of 40 correct features
    # (README), since two tasks' tickets keep different inputs for reasons other than a permutation.
    polished = [_swaps(ev.wq * a, b, ev.lin, p) for p in dict.fromkeys(tuple(p) for p in found)]
    return max(polished, key=lambda p: (ev.j(p), tuple(-p)))


def _swaps(a: np.ndarray, b: np.ndarray, lin: np.ndarray, perm) -> np.ndarray:
    """Best-improvement pairwise swaps (2-opt) maximising sum a[i, j] b[p_i, p_j] + sum lin[i, p_i]; a and b
    symmetric with zero diagonals."""
    perm = np.array(perm)
    d = len(perm)
    iu = np.triu_indices(d, 1)
    rows = np.arange(d)
    while True:
        bp = b[np.ix_(perm, perm)]
        m = a @ bp
        dm = np.diag(m)
        gain = 2 * (m + m.T - dm[:, None] - dm[None, :] + 2 * a * bp)
        cross = lin[:, perm]                    # cross[i, j] = lin[i, p_j]
        own = lin[rows, perm]
        gain += cross + cross.T - own[:, None] - own[None, :]
        k = int(np.argmax(gain[iu]))
        if gain[iu][k] <= 1e-9 * (1 + abs(float(np.sum(a * bp)) + float(own.sum()))):
            return perm
        i, j = iu[0][k], iu[1][k]
        perm[[i, j]] = perm[[j, i]]


def _describe(method: str, starts: int) -> str:
    if method == "stats":
        return "scipy linear_sum_assignment of per-feature statistics (mean, std, skewness, class means and stds)"
    if method == "faq":
        return "scipy quadratic_assignment (FAQ, maximise) on feature correlation matrices from the barycentre"
    return ("pairwise swaps maximising correlations + feature statistics (+ relevance), started from "
            "linear_sum_assignment of the statistics and from scipy quadratic_assignment (FAQ) runs from the "
            f"barycentre, the statistics, sorted-correlation signatures and {starts} random starts; confidence "
            "cross-fitted on halves of the samples")


def _features(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2 or len(x) < 3:
        raise ConfigError(f"input alignment needs arrays of shape (samples >= 3, features...), got {x.shape}")
    return x.reshape(len(x), -1)


def _correlation(x: np.ndarray) -> np.ndarray:
    """Feature-feature correlation with a zero diagonal; constant features correlate with nothing."""
    z = x - x.mean(0)
    sd = z.std(0)
    z = np.divide(z, sd, out=np.zeros_like(z), where=sd > 0)
    c = z.T @ z / len(z)
    np.fill_diagonal(c, 0.0)   # the diagonal is the same under every permutation: leave it out
    return c


def _feature_stats(x: np.ndarray, y, y_other) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature descriptors (feature, stat) and their sampling standard errors: mean, std, skewness, and the
    mean and std in every class both tasks share."""
    def moments(v):
        n = len(v)
        mean, sd = v.mean(0), v.std(0)
        return [mean, sd], [sd / np.sqrt(n), sd / np.sqrt(2 * n)]

    cols, se = moments(x)
    sd = x.std(0)
    cols.append((((x - x.mean(0)) / np.where(sd > 0, sd, 1)) ** 3).mean(0))
    se.append(np.full(x.shape[1], np.sqrt(6 / len(x))))
    if y is not None and y_other is not None:
        for c in np.intersect1d(np.unique(y), np.unique(y_other)):
            m, s = moments(x[np.asarray(y) == c])
            cols += m
            se += s
    desc, err = np.stack(cols, 1), np.stack(se, 1)
    return desc, np.maximum(err, 1e-12 * (1 + np.abs(desc)))   # constant features: no division by zero


def _row_signature(c: np.ndarray) -> np.ndarray:
    """Each feature's correlations with the others, sorted: a descriptor that no permutation changes."""
    off = np.where(np.eye(len(c), dtype=bool), -np.inf, c)   # drop the diagonal (sorted first)
    return np.sort(off, 1)[:, 1:]


def _assign(desc_target: np.ndarray, desc_source: np.ndarray) -> np.ndarray:
    """The source feature assigned to each target feature by nearest descriptors (linear_sum_assignment)."""
    from scipy.optimize import linear_sum_assignment  # noqa: PLC0415

    cost = ((desc_target[:, None, :] - desc_source[None, :, :]) ** 2).sum(-1)
    return linear_sum_assignment(cost)[1]


def _qap_objective(a: np.ndarray, b: np.ndarray, perm: np.ndarray) -> float:
    """sum over i != j of a[i, j] b[p_i, p_j] (the correlation matrices here have zero diagonals)."""
    return float(np.sum(a * b[np.ix_(perm, perm)]))


def true_permutation(order_source: np.ndarray, order_target: np.ndarray) -> np.ndarray:
    """The permutation (in :func:`align_inputs`' convention) between two views of the same raw features,
    ``x_source = raw[:, order_source]`` and ``x_target = raw[:, order_target]``."""
    return np.argsort(order_source)[order_target]


def planted_features(n: int = 4000, d: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A synthetic task pair with a planted permutation: ``(x_source, x_target, permutation)``.

    Both draw ``n`` independent samples (no sample corresponds) from one Gaussian with a random correlation
    structure (covariance ``A A^T / d`` with ``A`` standard normal); the target's features are permuted by a
    random ``permutation`` in :func:`align_inputs`' convention.
    """
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((d, d)) / np.sqrt(d)
    perm = rng.permutation(d)
    xs = rng.standard_normal((n, d)) @ a.T
    xt = (rng.standard_normal((n, d)) @ a.T)[:, perm]
    return xs, xt, perm


# ------------------------------------------------------------------------------------------- hidden units


def planted_support(n: int = 4000, d: int = 40, support: int = 10, classes: int = 10, seed: int = 0,
                    informative: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A task pair on independent Gaussian inputs whose labels read a planted support, the target's features
    permuted: ``(x_source, x_target, y_source, y_target, permutation)``; the support is features ``0..support-1``
    of the source.

    Both tasks draw ``n`` independent samples (no sample corresponds) and label them with one random two-layer
    teacher (tanh, width 64) that reads only the support. Feature correlations carry no information here; only
    the labels do. ``informative=False`` labels both at random: a pair with nothing to align.
    """
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((support, 64)) / np.sqrt(support)
    w2 = rng.standard_normal((64, classes)) / 8
    perm = rng.permutation(d)

    def draw():
        x = rng.standard_normal((n, d))
        y = np.argmax(np.tanh(x[:, :support] @ w1) @ w2, 1) if informative else rng.integers(0, classes, n)
        return x, y

    (xs, ys), (xt, yt) = draw(), draw()
    return xs, xt[:, perm], ys, yt, perm
