"""A calibrated test of "same universality class", and the classes it implies (a networkx graph of tasks).

Two tasks are indistinguishable when the distances between their runs are not larger than the distances
between runs (seeds) of the same task. The test statistic is the energy statistic

    T = mean distance between runs of A and runs of B  -  mean distance between two runs of the same task

(the within mean pools the pairs of A and of B), and its null distribution comes from relabelling runs:
under the null hypothesis "A and B are one class" the runs of A and B are exchangeable, so every split of
the pooled runs into groups of sizes ``n_A`` and ``n_B`` is equally likely. With few runs all splits are
enumerated (exact test); otherwise random splits are drawn. The p-value ``P(T_split >= T_observed)`` is then
valid (``P(p <= alpha) <= alpha``) and its randomised version (ties broken by a uniform draw) is exactly
uniform under the null.

Why not 2302.09160's test, which swaps matched eigenvalue pairs between the two spectra by coin flips and
recomputes the W1 distance: after any swap, the original one-to-one pairing is still a valid matching between
the two shuffled sets and costs exactly the observed distance, so the optimal (minimal) matching of the
shuffled sets can never cost more. The shuffled distances are therefore never above the observed one, the
fraction "shuffled >= observed" is 1 whatever the data, and it is not a p-value. It also compares one
spectrum per task, ignoring how much spectra vary between seeds — the scale a class difference must exceed.

Resolution: with ``n`` runs per task there are only ``C(2n, n) / 2`` distinct splits (10 for three seeds), so
the smallest attainable p-value is ``2 / C(2n, n)`` = 0.1 for three seeds per task: nothing can be declared
distinguishable at alpha < 0.1 with three seeds, however different the flows are.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from rgnet.errors import ConfigError

MAX_EXHAUSTIVE = 20000
CLASS_METHODS = ("components", "communities")

if TYPE_CHECKING:
    import networkx as nx


def energy_statistic(d: np.ndarray, labelings: np.ndarray) -> np.ndarray:
    """``T`` (between mean minus pooled within mean) for each boolean labelling (row of ``labelings``).

    NaN distances (pairs of copies of one run in a bootstrap sample) and the diagonal are left out of the means.
    """
    z = labelings.astype(float)
    w = 1.0 - z
    known = np.isfinite(d)
    np.fill_diagonal(known, False)
    d0, m = np.where(known, d, 0.0), known.astype(float)

    def pair_sum(a, mat, b):
        return np.einsum("li,ij,lj->l", a, mat, b)

    with np.errstate(invalid="ignore", divide="ignore"):
        between = pair_sum(z, d0, w) / pair_sum(z, m, w)
        within = (pair_sum(z, d0, z) + pair_sum(w, d0, w)) / (pair_sum(z, m, z) + pair_sum(w, m, w))
    return between - within


def permutation_test(d: np.ndarray, n_a: int, n_perm: int = 9999, max_exhaustive: int = MAX_EXHAUSTIVE,
                     rng: np.random.Generator | None = None, blocks: np.ndarray | None = None) -> dict:
    """Two-group permutation test on a distance matrix whose first ``n_a`` rows are group A.

    ``blocks`` (one label per row, e.g. the run's seed): only splits that keep each block's number of A rows
    are drawn — labels are exchanged within a block only, as the null allows when runs of one seed share their
    initialisation across tasks.

    Returns ``statistic``, ``p_value`` (``#{T_split >= T}`` / splits, the observed split included),
    ``p_value_randomised`` (ties broken uniformly: exactly U(0, 1) under the null), ``p_min`` (the smallest
    p-value these splits can give), ``n_splits`` and ``exhaustive``. The groups need at least one within pair
    in total (``n >= 3``); otherwise p is NaN.
    """
    rng = rng or np.random.default_rng(0)
    d = np.asarray(d, float)
    n = d.shape[0]
    n_b = n - n_a
    if n_a < 1 or n_b < 1 or n < 3:
        return {"statistic": np.nan, "p_value": np.nan, "p_value_randomised": np.nan, "p_min": np.nan,
                "n_splits": 0, "exhaustive": False}
    observed = np.zeros((1, n), bool)
    observed[0, :n_a] = True
    t_obs = float(energy_statistic(d, observed)[0])
    if blocks is None:
        total = math.comb(n, n_a)
        exhaustive = total <= max_exhaustive
        if exhaustive:
            splits = np.zeros((total, n), bool)
            for k, idx in enumerate(itertools.combinations(range(n), n_a)):
                splits[k, list(idx)] = True
        else:
            splits = np.zeros((n_perm, n), bool)
            for k in range(n_perm):
                splits[k, rng.permutation(n)[:n_a]] = True
    else:
        splits, exhaustive = _block_splits(observed[0], np.asarray(blocks), n_perm, max_exhaustive, rng)
        total = len(splits)
    t = energy_statistic(d, splits)
    if not np.isfinite(t_obs):
        return {"statistic": np.nan, "p_value": np.nan, "p_value_randomised": np.nan, "p_min": np.nan,
                "n_splits": 0, "exhaustive": False}
    tol = 1e-10 * max(1.0, float(np.nanmax(np.abs(t))))
    greater, equal = np.sum(t > t_obs + tol), np.sum(np.abs(t - t_obs) <= tol)
    u = rng.random()
    top = np.sum(t >= np.nanmax(t) - tol)
    if exhaustive:
        p, p_rand, p_min = (greater + equal) / total, (greater + u * equal) / total, top / total
    else:  # the observed split counts once more (Monte Carlo p-values stay valid)
        p, p_rand, p_min = (greater + equal + 1) / (n_perm + 1), (greater + u * (equal + 1)) / (n_perm + 1), 1 / (
            n_perm + 1)
    return {"statistic": t_obs, "p_value": float(p), "p_value_randomised": float(p_rand), "p_min": float(p_min),
            "n_splits": int(total if exhaustive else n_perm), "exhaustive": bool(exhaustive)}


def _block_splits(observed: np.ndarray, blocks: np.ndarray, n_perm: int, max_exhaustive: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Every split (or ``n_perm`` random ones) that gives each block as many A rows as ``observed`` does."""
    groups = [np.flatnonzero(blocks == b) for b in dict.fromkeys(blocks.tolist())]
    choices = [list(itertools.combinations(g, int(observed[g].sum()))) for g in groups]
    total = math.prod(len(c) for c in choices)
    n = len(observed)
    if total <= max_exhaustive:
        splits = np.zeros((total, n), bool)
        for k, pick in enumerate(itertools.product(*choices)):
            for idx in pick:
                splits[k, list(idx)] = True
        return splits, True
    splits = np.zeros((n_perm, n), bool)
    for k in range(n_perm):
        for c in choices:
            splits[k, list(c[rng.integers(len(c))])] = True
    return splits, False


def same_class_test(dist: xr.DataArray, task=None, n_perm: int = 9999, max_exhaustive: int = MAX_EXHAUSTIVE,
                    seed: int = 0, blocks=None) -> xr.Dataset:
    """Permutation test of "same class" for every pair of tasks, from a ``(run, run2)`` distance matrix.

    Parameters
    ----------
    dist : xr.DataArray
        Distances between runs, dims ``(run, run2)``, with a ``task(run)`` coordinate (or pass ``task``).
    task : array of str, optional
        Task key of each run (default ``dist.task``).
    n_perm, max_exhaustive : int
        Random splits drawn when a pair has more than ``max_exhaustive`` splits (else all are enumerated).
    seed : int
        Seed of the random splits and of the tie-breaking draw.
    blocks : array, optional
        A block label per run (its seed): task labels are then exchanged only within a block (see
        :func:`permutation_test`).

    Returns
    -------
    xr.Dataset
        Dims ``(task, other)``: ``statistic`` (energy statistic T, distance units), ``p_value``,
        ``p_value_randomised``, ``p_min`` (smallest attainable p), ``between`` (mean distance between the tasks'
        runs), ``n_splits``. The diagonal has T = 0 and p = 1.
    """
    d, labels, tasks = _matrix_and_labels(dist, task)
    blocks = None if blocks is None else np.asarray(blocks)
    return _pairwise_tests(d, labels, tasks, n_perm, max_exhaustive, np.random.default_rng(seed), blocks).assign_attrs(
        signature=dist.attrs.get("signature", ""), units=dist.attrs.get("units", ""))


def _matrix_and_labels(dist: xr.DataArray, task) -> tuple[np.ndarray, np.ndarray, list[str]]:
    labels = np.asarray(dist["task"].values if task is None else task).astype(str)
    d = np.asarray(dist.transpose("run", "run2").values if isinstance(dist, xr.DataArray) else dist, float)
    if d.shape != (len(labels), len(labels)):
        raise ConfigError(f"the distance matrix is {d.shape} but there are {len(labels)} task labels")
    return d, labels, sorted(set(labels))


def _pairwise_tests(d, labels, tasks, n_perm, max_exhaustive, rng, blocks=None) -> xr.Dataset:
    k = len(tasks)
    stat, p, p_rand, p_min, between = (np.zeros((k, k)) for _ in range(5))
    splits = np.zeros((k, k), int)
    np.fill_diagonal(p, 1.0)
    np.fill_diagonal(p_rand, 1.0)
    np.fill_diagonal(p_min, 1.0)
    members = {t: np.flatnonzero(labels == t) for t in tasks}
    for i, j in itertools.combinations(range(k), 2):
        a, b = members[tasks[i]], members[tasks[j]]
        idx = np.concatenate([a, b])
        res = permutation_test(d[np.ix_(idx, idx)], len(a), n_perm, max_exhaustive, rng,
                               None if blocks is None else blocks[idx])
        stat[i, j] = stat[j, i] = res["statistic"]
        p[i, j] = p[j, i] = res["p_value"]
        p_rand[i, j] = p_rand[j, i] = res["p_value_randomised"]
        p_min[i, j] = p_min[j, i] = res["p_min"]
        between[i, j] = between[j, i] = np.nanmean(d[np.ix_(a, b)])
        splits[i, j] = splits[j, i] = res["n_splits"]
    dims = ("task", "other")
    return xr.Dataset({
        "statistic": (dims, stat, {"long_name": "energy statistic: between minus within-task mean distance"}),
        "p_value": (dims, p, {"long_name": "permutation p-value of 'same class' (splits of the pooled runs)",
                              "units": "1"}),
        "p_value_randomised": (dims, p_rand, {"long_name": "randomised permutation p-value (uniform under the "
                                                           "null)", "units": "1"}),
        "p_min": (dims, p_min, {"long_name": "smallest p-value the splits of this pair can give", "units": "1"}),
        "between": (dims, between, {"long_name": "mean distance between runs of the two tasks"}),
        "n_splits": (dims, splits, {"long_name": "splits of the pooled runs used by the test"}),
    }, coords={"task": tasks, "other": tasks})


def class_graph(test: xr.Dataset, alpha: float = 0.1, p_var: str = "p_value") -> nx.Graph:
    """Graph of tasks with an edge where the pair is indistinguishable (``p > alpha``).

    Edge attributes: ``distance`` (mean between-run distance, also the ``weight``) and ``p_value``.
    """
    import networkx as nx  # noqa: PLC0415  (here, not at the top: `import rgnet` stays fast)

    g = nx.Graph()
    tasks = [str(t) for t in test["task"].values]
    g.add_nodes_from(tasks)
    p = test[p_var].values
    between = test["between"].values
    for i, j in itertools.combinations(range(len(tasks)), 2):
        if np.isfinite(p[i, j]) and p[i, j] > alpha:
            g.add_edge(tasks[i], tasks[j], weight=float(between[i, j]), distance=float(between[i, j]),
                       p_value=float(p[i, j]))
    return g


def classes(graph: nx.Graph, method: str = "components", seed: int = 0) -> dict[str, int]:
    """Class number of each task: connected components, or Louvain communities weighted by the p-values.

    Components are transitive closures (A ~ B and B ~ C put A and C together even if A and C differ);
    communities split such chains where the graph is sparse between groups. Classes are numbered 0, 1, ...
    in the order of their alphabetically first task.
    """
    import networkx as nx  # noqa: PLC0415

    if method not in CLASS_METHODS:
        raise ConfigError(f"unknown class method {method!r}; choose one of {', '.join(CLASS_METHODS)}")
    if method == "components":
        groups = list(nx.connected_components(graph))
    else:
        groups = list(nx.community.louvain_communities(graph, weight="p_value", seed=seed))
    groups = sorted((sorted(g) for g in groups), key=lambda g: g[0])
    return {t: k for k, g in enumerate(groups) for t in g}


def same_class(test: xr.Dataset, alpha: float = 0.1, method: str = "components") -> xr.DataArray:
    """``(task, other)`` boolean: the two tasks fall into one class."""
    ids = classes(class_graph(test, alpha), method)
    tasks = [str(t) for t in test["task"].values]
    m = np.array([[ids[a] == ids[b] for b in tasks] for a in tasks])
    return xr.DataArray(m, dims=("task", "other"), coords={"task": tasks, "other": tasks},
                        attrs={"long_name": f"same class ({method}, alpha = {alpha})"})


def resample_seeds(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of a bootstrap sample: the runs of every task resampled with replacement (task sizes kept)."""
    return np.concatenate([rng.choice(np.flatnonzero(labels == t), np.sum(labels == t))
                           for t in sorted(set(labels))])


def bootstrap_tests(dist: xr.DataArray, n_boot: int = 200, task=None, seed: int = 0):
    """Yield ``(run indices, pairwise tests)`` for ``n_boot`` seed bootstraps (runs resampled within each task)."""
    d, labels, tasks = _matrix_and_labels(dist, task)
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        idx = resample_seeds(labels, rng)
        d_boot = np.where(idx[:, None] == idx[None, :], np.nan, d[np.ix_(idx, idx)])  # a copy is no new seed
        yield idx, _pairwise_tests(d_boot, labels[idx], tasks, 999, MAX_EXHAUSTIVE, rng)


def class_share(dist: xr.DataArray, alpha: float = 0.1, n_boot: int = 200, method: str = "components",
                task=None, seed: int = 0) -> xr.DataArray:
    """Per pair of tasks, the fraction of seed bootstraps in which the two tasks share a class.

    Each replicate resamples the runs of every task with replacement, reruns all pairwise tests and forms the
    classes again. The distance between two copies of one run is left out (it would be 0 and make a task look
    tighter than its seeds are); with few seeds a replicate often holds fewer distinct runs, so read the shares
    as a stability measure of the classes, not as probabilities.
    """
    tests = [test for _, test in bootstrap_tests(dist, n_boot, task, seed)]
    return share_of(tests, alpha, method)


def share_of(tests: list[xr.Dataset], alpha: float, method: str) -> xr.DataArray:
    """Fraction of the bootstrap ``tests`` in which each pair of tasks shares a class."""
    share = sum(same_class(t, alpha, method).astype(float) for t in tests) / max(len(tests), 1)
    return share.assign_attrs(long_name="fraction of seed bootstraps in which the tasks share a class", units="1",
                              n_boot=len(tests))
