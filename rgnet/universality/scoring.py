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
  (maximal balanced accuracy) and applied to its pairs; the balanced accuracy of all these predictions;
- Spearman's rho of ``S`` against the gap over all pairs, and *beyond*: the Pearson correlation of the residuals
  of ``S`` and of the gap after each is fitted by a source effect plus a target effect (least squares over the
  off-diagonal pairs): does the score know more than "which sources are good, which targets are hard"?
- intervals by resampling tasks (the unit that is sampled): tasks drawn with replacement, the statistic
  recomputed on the induced pairs (pairs of a task with its own copy left out);
- a predictor whose score is constant over the pairs makes no prediction: every score is NaN, not 0.5.
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
    if y.all() or not y.any():   # one verdict only: nothing to separate
        return np.nan
    preds, truth = [], []
    for task in range(k):
        held = (src == task) | (tgt == task)
        if not held.any() or held.all():
            continue
        thr = best_threshold(s[~held], y[~held])
        preds.append(s[held] >= thr)
        truth.append(y[held])
    return balanced_accuracy(np.concatenate(preds), np.concatenate(truth)) if preds else np.nan


def residuals(x: np.ndarray) -> np.ndarray:
    """``x[s, t]`` minus its least-squares fit ``mu + a_s + b_t`` over the finite off-diagonal pairs (NaN
    elsewhere): what a pair holds beyond its source's and its target's main effects."""
    k = len(x)
    ok = off_diagonal(k) & np.isfinite(x)
    src, tgt = np.nonzero(ok)
    design = np.zeros((len(src), 2 * k + 1))
    design[:, 0] = 1
    design[np.arange(len(src)), 1 + src] = 1
    design[np.arange(len(src)), 1 + k + tgt] = 1
    coef = np.linalg.lstsq(design, x[src, tgt], rcond=None)[0]
    out = np.full(x.shape, np.nan)
    out[src, tgt] = x[src, tgt] - design @ coef
    return out


def beyond_effects(score: np.ndarray, gap: np.ndarray) -> float:
    """Pearson correlation of the score's and the gap's residuals after source and target effects."""
    rs, rg = residuals(np.where(np.isfinite(gap), score, np.nan)), residuals(np.where(np.isfinite(score), gap, np.nan))
    ok = np.isfinite(rs) & np.isfinite(rg)
    if ok.sum() < 3 or np.ptp(rs[ok]) < 1e-12 or np.ptp(rg[ok]) < 1e-12:
        return np.nan
    return float(np.corrcoef(rs[ok], rg[ok])[0, 1])


def spearman_gap(score: np.ndarray, gap: np.ndarray) -> float:
    """Spearman's rho of the score against the gap over the finite off-diagonal pairs."""
    from scipy.stats import spearmanr  # noqa: PLC0415

    off = off_diagonal(len(score)) & np.isfinite(score) & np.isfinite(gap)
    if off.sum() < 3 or np.ptp(score[off]) == 0:
        return np.nan
    return float(spearmanr(_snap(score[off]), gap[off]).statistic)


def task_bootstrap(statistic: Callable[..., float], matrices: list[np.ndarray], n_boot: int = 999, ci: float = 0.95,
                   seed: int = 0) -> tuple[float, float]:
    """Percentile interval of ``statistic(*matrices)`` over tasks drawn with replacement: each draw keeps the
    pairs between distinct drawn tasks (a task paired with its own copy is left out)."""
    rng = np.random.default_rng(seed)
    k = len(matrices[0])
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, k, k)
        same = idx[:, None] == idx[None, :]
        drawn = [np.where(same, np.nan, m[np.ix_(idx, idx)]) for m in matrices]
        values.append(statistic(*drawn))
    values = np.array(values)
    values = values[np.isfinite(values)]
    if values.size < n_boot / 2:   # most draws could not compute it: no interval
        return np.nan, np.nan
    lo, hi = np.percentile(values, [50 * (1 - ci), 50 * (1 + ci)])
    return float(lo), float(hi)


def tau_difference(score_a: np.ndarray, score_b: np.ndarray, gap: np.ndarray, n_boot: int = 999, ci: float = 0.95,
                   seed: int = 0) -> tuple[float, float, float]:
    """``tau_w(a) - tau_w(b)`` against one measured gap matrix, and its percentile interval over tasks drawn with
    replacement, the same draws for both predictors (is ``a`` better than ``b``?)."""
    diff = lambda sa, sb, g: weighted_tau(sa, g)[0] - weighted_tau(sb, g)[0]  # noqa: E731
    return (diff(score_a, score_b, gap), *task_bootstrap(diff, [score_a, score_b, gap], n_boot, ci, seed))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of the p-values ``p`` (NaN kept, not counted)."""
    p = np.asarray(p, float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m, running = len(order), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


NO_PREDICTION = ("auroc", "auroc_lower", "auroc_upper", "p_auroc", "tau_w", "p_tau", "loto_balanced_accuracy",
                 "tau_task_lower", "tau_task_upper", "auroc_task_lower", "auroc_task_upper", "rho_gap", "beyond",
                 "p_beyond")


def score_matrix(score: np.ndarray, transfers: np.ndarray, gap: np.ndarray, boot: list[np.ndarray] = (),
                 ci: float = 0.95, n_perm: int = 9999, seed: int = 0, n_task_boot: int = 999) -> dict[str, float]:
    """Every score of one predictor: AUROC (+ percentile interval over ``boot`` score matrices), tau_w, the
    Mantel p-values of both, the leave-one-task-out balanced accuracy, rho against the gap, the correlation
    beyond source and target effects with its Mantel p-value, and intervals by resampling tasks."""
    off = off_diagonal(len(score)) & np.isfinite(score)
    if off.sum() == 0 or np.ptp(_snap(score[off])) == 0:   # constant: no prediction
        return {**{k: np.nan for k in NO_PREDICTION}, "tau_targets": 0}
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
        **dict(zip(("tau_task_lower", "tau_task_upper"),
                   task_bootstrap(lambda s, g: weighted_tau(s, g)[0], [score, gap], n_task_boot, ci, seed))),
        **dict(zip(("auroc_task_lower", "auroc_task_upper"),
                   task_bootstrap(pair_auroc, [score, transfers], n_task_boot, ci, seed))),
        "rho_gap": spearman_gap(score, gap),
        "beyond": beyond_effects(score, gap),
        "p_beyond": mantel_p(score, lambda s: beyond_effects(s, gap), n_perm, seed),
    }
