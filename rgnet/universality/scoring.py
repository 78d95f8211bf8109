"""Scoring a predicted transfer score against the measured transfer matrix.

A *score matrix* ``S[source, target]`` (higher = the source's ticket is predicted to work on the target) is
compared with the measured ``transfers`` verdict (1 / 0 / NaN) and the measured ``gap`` (transferred minus own
ticket, accuracy units) on the off-diagonal pairs:

- AUROC of ``S`` for the binary verdict (Mann-Whitney, ties count one half);
- weighted Kendall tau (``scipy.stats.weightedtau``, hyperbolic weights on the top ranks) of ``S`` against
  the gap among the sources of each target, averaged over targets (the LogME / TLlib convention);
- a Mantel-style permutation p-value: the task labels of ``S`` are permuted, rows and columns together (all
  ``k!`` permutations when feasible), and the statistic recomputed against the fixed measured matrix;
- leave-one-task-out thresholds: for each task, a threshold on ``S`` is chosen on the pairs not involving it
  (maximal balanced accuracy) and applied to its pairs; the balanced accuracy of all these predictions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

MAX_EXHAUSTIVE_TASK_PERMUTATIONS = 40320  # 8!


def off_diagonal(k: int) -> np.ndarray:
    return ~np.eye(k, dtype=bool)


def _snap(x: np.ndarray) -> np.ndarray:
    """Round to 10 significant digits of the largest value, so that scores equal up to float noise (e.g. fits
    computed in another task order) tie exactly and rankings do not depend on the order of the tasks."""
    scale = np.nanmax(np.abs(x)) if np.any(np.isfinite(x)) else 0.0
    if not scale > 0:
        return x
    exp = 10.0 ** (np.floor(np.log10(scale)) - 9)
    return np.round(x / exp) * exp


def auroc(score, label) -> float:
    """Area under the ROC curve of ``score`` for the binary ``label`` (NaN pairs dropped; ties count 1/2)."""
    s, y = np.ravel(np.asarray(score, float)), np.ravel(np.asarray(label, float))
    ok = np.isfinite(s) & np.isfinite(y)
    s, y = _snap(s[ok]), y[ok].astype(bool)
    from scipy.stats import rankdata  # noqa: PLC0415  (here: scipy.stats takes a second to import)

    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return np.nan
    ranks = rankdata(np.concatenate([s[y], s[~y]]))
    u = ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def pair_auroc(score: np.ndarray, transfers: np.ndarray) -> float:
    """AUROC over the off-diagonal pairs of two ``(source, target)`` matrices."""
    off = off_diagonal(len(score))
    return auroc(score[off], transfers[off])


def weighted_tau(score: np.ndarray, gap: np.ndarray, min_sources: int = 3) -> tuple[float, int]:
    """Mean over targets of ``weightedtau(score, gap)`` among the target's sources (the diagonal excluded).

    Targets with fewer than ``min_sources`` finite pairs, or where either ranking is constant, are skipped.
    Returns ``(mean tau, number of targets averaged)``.
    """
    from scipy.stats import weightedtau  # noqa: PLC0415

    taus = []
    for j in range(score.shape[1]):
        s, g = score[:, j].astype(float), gap[:, j].astype(float)
        ok = np.isfinite(s) & np.isfinite(g) & (np.arange(len(s)) != j)
        if ok.sum() < min_sources or np.ptp(s[ok]) == 0 or np.ptp(g[ok]) == 0:
            continue
        taus.append(weightedtau(_snap(s[ok]), _snap(g[ok])).statistic)
    taus = [t for t in taus if np.isfinite(t)]
    return (float(np.mean(taus)) if taus else np.nan), len(taus)


def task_permutations(k: int, n_perm: int = 9999, seed: int = 0) -> tuple[np.ndarray, bool]:
    """All ``k!`` orderings of ``k`` tasks when at most 8! (identity first), else ``n_perm`` random ones."""
    if math.factorial(k) <= MAX_EXHAUSTIVE_TASK_PERMUTATIONS:
        return np.array(list(itertools.permutations(range(k)))), True
    rng = np.random.default_rng(seed)
    return np.array([np.arange(k)] + [rng.permutation(k) for _ in range(n_perm)]), False


def mantel_p(score: np.ndarray, statistic: Callable[[np.ndarray], float], n_perm: int = 9999,
             seed: int = 0) -> float:
    """P(statistic of the relabelled score >= observed): task labels of rows and columns permuted together.

    ``statistic(S)`` compares a score matrix with the (fixed) measured matrix. The identity permutation is
    included, so the p-value is at least ``1 / k!`` (exhaustive) or ``1 / (n_perm + 1)``.
    """
    observed = statistic(score)
    if not np.isfinite(observed):
        return np.nan
    perms, _ = task_permutations(len(score), n_perm, seed)
    values = np.array([statistic(score[np.ix_(p, p)]) for p in perms])
    values = values[np.isfinite(values)]
    return float(np.mean(values >= observed - 1e-12))


def balanced_accuracy(pred, truth) -> float:
    """Mean of the true-positive and true-negative rates (the one present, if only one class occurs)."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    rates = [np.mean(pred[truth == c] == c) for c in (True, False) if np.any(truth == c)]
    return float(np.mean(rates)) if rates else np.nan


def best_threshold(score: np.ndarray, truth: np.ndarray) -> float:
    """Threshold ``t`` (predict transfer where ``score >= t``) with the highest balanced accuracy.

    Candidates are midpoints between distinct scores and the two extremes; among equally good thresholds the
    middle one is taken.
    """
    u = np.unique(score)
    candidates = np.concatenate([[-np.inf], (u[:-1] + u[1:]) / 2, [np.inf]])
    acc = np.array([balanced_accuracy(score >= c, truth) for c in candidates])
    best = np.flatnonzero(acc >= np.nanmax(acc) - 1e-12)
    return float(candidates[best[len(best) // 2]])


def loto_balanced_accuracy(score: np.ndarray, transfers: np.ndarray) -> float:
    """Balanced accuracy of leave-one-task-out thresholded predictions (each pair is predicted in the folds
    of its source and of its target)."""
    k = len(score)
    ok = off_diagonal(k) & np.isfinite(score) & np.isfinite(transfers)
    src, tgt = np.nonzero(ok)
    s, y = score[src, tgt], transfers[src, tgt].astype(bool)
    preds, truth = [], []
    for task in range(k):
        held = (src == task) | (tgt == task)
        if not held.any() or held.all():
            continue
        thr = best_threshold(s[~held], y[~held])
        preds.append(s[held] >= thr)
        truth.append(y[held])
    return balanced_accuracy(np.concatenate(preds), np.concatenate(truth)) if preds else np.nan


def score_matrix(score: np.ndarray, transfers: np.ndarray, gap: np.ndarray, boot: list[np.ndarray] = (),
                 ci: float = 0.95, n_perm: int = 9999, seed: int = 0) -> dict[str, float]:
    """Every score of one predictor: AUROC (+ percentile interval over ``boot`` score matrices), tau_w, the
    Mantel p-values of both, and the leave-one-task-out balanced accuracy."""
    a = pair_auroc(score, transfers)
    boots = np.array([pair_auroc(b, transfers) for b in boot])
    boots = boots[np.isfinite(boots)]
    lo, hi = (np.percentile(boots, [50 * (1 - ci), 50 * (1 + ci)]) if boots.size else (np.nan, np.nan))
    tau, n_targets = weighted_tau(score, gap)
    return {
        "auroc": a, "auroc_lower": float(lo), "auroc_upper": float(hi),
        "p_auroc": mantel_p(score, lambda s: pair_auroc(s, transfers), n_perm, seed),
        "tau_w": tau, "tau_targets": n_targets,
        "p_tau": mantel_p(score, lambda s: weighted_tau(s, gap)[0], n_perm, seed),
        "loto_balanced_accuracy": loto_balanced_accuracy(score, transfers),
    }
