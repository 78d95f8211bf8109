"""Input features: the permutation between two tasks, estimated from their data alone (graph matching)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from rgnet.errors import ConfigError

INPUT_METHODS = ("qap", "faq", "stats")


def align_inputs(x_source, x_target, y_source=None, y_target=None, *, method: str = "qap", starts: int = 16,
                 n_random: int = 1000, seed: int = 0) -> xr.Dataset:
    """The permutation of input features that carries the source task's frame to the target's.

    Parameters
    ----------
    x_source, x_target : array (sample, *in_shape)
        Inputs of the two tasks (any sample counts; samples need not correspond). Flattened to features.
    y_source, y_target : array (sample,), optional
        Class labels; when both are given, class-conditional feature statistics inform one of the starts.
    method : str
        ``"qap"`` (default): the full search above. For comparison only: ``"faq"`` — FAQ from the barycentre
        alone; ``"stats"`` — ``linear_sum_assignment`` of per-feature statistics alone (no graph matching).
    starts : int
        Random starts of the graph matching, besides the barycentre and the two descriptor starts.
    n_random : int
        Uniformly random permutations forming the reference for the confidence.
    seed : int
        Seeds the random starts, the random permutations and the null (the result is deterministic).

    Returns
    -------
    xr.Dataset
        ``permutation(feature)``: the source feature matched to each target feature. Scalars: ``objective``
        = sum over i != j of C_target[i, j] C_source[p_i, p_j] (C: feature correlation matrices); ``cosine``
        (the objective over the norms of the off-diagonal parts: 1 = identical correlation structure);
        ``identity_objective``; ``random_mean`` / ``random_std`` over ``n_random`` random permutations;
        ``confidence`` = (objective - random_mean) / random_std; ``null_confidence``, the same score when the
        source's features are made independent (each column shuffled over samples) and matched alike — what
        the search reaches on structure-free data. Trust a permutation whose confidence is far above it.
    """
    if method not in INPUT_METHODS:
        raise ConfigError(f"input alignment method must be one of {', '.join(INPUT_METHODS)}, got {method!r}")
    xs, xt = _features(x_source), _features(x_target)
    if xs.shape[1] != xt.shape[1]:
        raise ConfigError(f"input features differ: the source task has {xs.shape[1]}, the target task "
                          f"{xt.shape[1]}; input alignment needs tasks with the same number of input features")
    rng = np.random.default_rng(seed)
    perm, obj, rand = _match_features(xs, xt, y_source, y_target, method, starts, n_random, rng)
    null = np.column_stack([rng.permutation(col) for col in xs.T])
    _, null_obj, null_rand = _match_features(null, xt, y_source, y_target, method, starts, n_random, rng)
    a, b = _correlation(xt), _correlation(xs)
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    out = xr.Dataset(
        {"permutation": ("feature", perm.astype(np.int64),
                         {"long_name": "source feature matched to each target feature: x_target[:, j] ~ "
                                       "x_source[:, permutation[j]]"}),
         "objective": ((), obj, {"long_name": "sum over i != j of C_target[i, j] C_source[p_i, p_j]", "units": "1"}),
         "cosine": ((), obj / norm if norm else np.nan,
                    {"long_name": "cosine between the off-diagonal correlations after alignment", "units": "1"}),
         "identity_objective": ((), _qap_objective(a, b, np.arange(len(a))),
                                {"long_name": "objective without permutation", "units": "1"}),
         "random_mean": ((), rand.mean(), {"long_name": f"mean objective of {n_random} random permutations"}),
         "random_std": ((), rand.std(ddof=1), {"long_name": "std of the random permutations' objective"}),
         "confidence": ((), (obj - rand.mean()) / rand.std(ddof=1),
                        {"long_name": "objective above random permutations, in their standard deviations",
                         "units": "1"}),
         "null_confidence": ((), (null_obj - null_rand.mean()) / null_rand.std(ddof=1),
                             {"long_name": "confidence reached against the source with independent features",
                              "units": "1"}),
         },
        coords={"feature": np.arange(len(perm))})
    out.attrs.update(method=_describe(method, starts), seed=seed)
    return out


def _match_features(xs, xt, ys, yt, method: str, starts: int, n_random: int, rng: np.random.Generator):
    """Best permutation, its objective and the objectives of ``n_random`` random permutations."""
    from scipy.optimize import quadratic_assignment  # noqa: PLC0415

    a, b = _correlation(xt), _correlation(xs)
    d = len(a)
    by_stats = _assign(_feature_stats(xt, yt, ys), _feature_stats(xs, ys, yt))
    if method == "stats":
        best = by_stats
    elif method == "faq":
        best = quadratic_assignment(a, b, method="faq", options={"maximize": True, "rng": rng}).col_ind
    else:
        eye = np.eye(d)
        found = []
        for p0 in ["barycenter", eye[by_stats], eye[_assign(_row_signature(a), _row_signature(b))]] \
                + ["randomized"] * starts:
            found.append(quadratic_assignment(a, b, method="faq",
                                              options={"maximize": True, "P0": p0, "rng": rng}).col_ind)
        # FAQ stops at a local optimum of its relaxation; pairwise swaps (2-opt) from there reach the planted
        # permutation on weakly correlated features where FAQ alone does not (README: transfer up to symmetry)
        polished = []
        for perm in dict.fromkeys(tuple(p) for p in sorted(found, key=lambda p: -_qap_objective(a, b, p))[:4]):
            res = quadratic_assignment(a, b, method="2opt", options={"maximize": True, "rng": rng,
                                                                      "partial_guess": np.c_[np.arange(d), perm]})
            polished.append(res.col_ind)
        best = max(polished, key=lambda p: (_qap_objective(a, b, p), tuple(-p)))
    rand = np.array([_qap_objective(a, b, rng.permutation(d)) for _ in range(n_random)])
    return best, _qap_objective(a, b, best), rand


def _describe(method: str, starts: int) -> str:
    if method == "stats":
        return "scipy linear_sum_assignment of per-feature statistics (mean, std, skewness, class means and stds)"
    if method == "faq":
        return "scipy quadratic_assignment (FAQ, maximise) on feature correlation matrices from the barycentre"
    return ("scipy quadratic_assignment (FAQ, maximise) on feature correlation matrices from the barycentre, "
            "per-feature statistics and sorted-correlation signatures (both by linear_sum_assignment) and "
            f"{starts} random starts; the best four polished by 2-opt")


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


def _feature_stats(x: np.ndarray, y, y_other) -> np.ndarray:
    """Per-feature descriptors (feature, stat): mean, std, skewness, and class-conditional means and stds for
    the classes both tasks share."""
    mean, sd = x.mean(0), x.std(0)
    skew = (((x - mean) / np.where(sd > 0, sd, 1)) ** 3).mean(0)
    cols = [mean, sd, skew]
    if y is not None and y_other is not None:
        for c in np.intersect1d(np.unique(y), np.unique(y_other)):
            xc = x[np.asarray(y) == c]
            cols += [xc.mean(0), xc.std(0)]
    return np.stack(cols, 1)


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
