"""How many tasks and seeds does a transfer family need? Power of the pre-registered primary score by simulation.

    python scripts/power_simulation.py [--reps 200] [--perms 199]

Model of one family (numbers measured on data/transfer-family, 7 tasks x 5 seeds, `gap_range_seed`): the true
gap of pair (s, t) is a source effect (sd 1.2 points) + a target effect (sd 1.1) + a pair effect (sd 0.54); each
seed adds noise of sd 0.87 points, and the measured gap is the mean over the seeds that give the gaps (half of
them: the other half gives the signatures, as the pre-registration asks). A predictor's score is the source and
pair part of the true gap plus independent noise as large as that part, which gives a within-target Kendall tau
of 0.5 against the true gap (tau = 2/pi arcsin r with r = 0.71); under the null the score is pure noise. Two
designs: *unstructured* (pair effects independent) and *graded* (tasks on a square grid of two generator
parameters; the pair effect falls with the grid distance, so neighbouring tasks are alike, and the predictor sees
that distance).

The primary score is tau_w (weighted Kendall tau per target, averaged) with its task-permutation p-value (as
`rgnet.universality.scoring.mantel_p`, here always with ``--perms`` random permutations); power is the share of
simulated families with p < 0.05, the null row is the false-positive rate. Monte Carlo: ``--reps`` families per
cell.
"""

from __future__ import annotations

import argparse

import numpy as np

from rgnet.universality.scoring import beyond_effects, weighted_tau

SD_SOURCE, SD_TARGET, SD_PAIR, SD_SEED = 0.012, 0.011, 0.0054, 0.0087   # accuracy units, measured (see above)


def family(k: int, seeds: int, design: str, null: bool, rng: np.random.Generator,
           pair_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(score, measured gap) of one simulated family of ``k`` tasks, gaps from ``seeds // 2`` seeds;
    ``pair_only``: the score knows the pair effect only (no source effect), as the ``beyond`` test asks."""
    a, b = rng.normal(0, SD_SOURCE, k), rng.normal(0, SD_TARGET, k)
    if design == "graded":
        side = int(np.ceil(np.sqrt(k)))
        xy = np.array([(i // side, i % side) for i in range(k)], float)
        dist = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
        pair = -dist / np.std(dist[~np.eye(k, dtype=bool)]) * SD_PAIR
    else:
        pair = rng.normal(0, SD_PAIR, (k, k))
    signal = pair if pair_only else a[:, None] + pair
    noise = rng.normal(0, np.std(signal), (k, k))
    score = noise if null else signal + noise
    n_gap = max(1, seeds // 2)
    gap = a[:, None] + b[None, :] + pair + rng.normal(0, SD_SEED / np.sqrt(n_gap), (k, k))
    np.fill_diagonal(gap, np.nan)
    np.fill_diagonal(score, np.nan)
    return score, gap


def permutation_p(score: np.ndarray, gap: np.ndarray, perms: int, rng: np.random.Generator,
                  statistic=lambda s, g: weighted_tau(s, g)[0]) -> float:
    """P(statistic of the score with task labels permuted >= observed), the observed labelling counted once."""
    observed = statistic(score, gap)
    null = [statistic(score[np.ix_(q, q)], gap) for q in (rng.permutation(len(score)) for _ in range(perms))]
    return (1 + sum(v >= observed - 1e-12 for v in null if np.isfinite(v))) / (perms + 1)


def power(k: int, seeds: int, design: str, null: bool, reps: int, perms: int, seed: int, test: str = "tau") -> float:
    rng = np.random.default_rng(seed)
    if test == "tau":
        return float(np.mean([permutation_p(*family(k, seeds, design, null, rng), perms, rng) < 0.05
                              for _ in range(reps)]))
    return float(np.mean([permutation_p(*family(k, seeds, design, null, rng, pair_only=True), perms, rng,
                                        beyond_effects) < 0.05 for _ in range(reps)]))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--perms", type=int, default=199)
    p.add_argument("--tasks", default="5,7,10,16,24")
    p.add_argument("--seeds", default="5,12")
    p.add_argument("--test", choices=["tau", "beyond"], default="tau",
                   help="tau: the primary tau_w; beyond: the correlation beyond source and target effects, for a "
                        "score that knows only the pair effect (as large as its noise)")
    a = p.parse_args(argv)
    tasks = [int(x) for x in a.tasks.split(",")]
    seeds = [int(x) for x in a.seeds.split(",")]
    what = ("tau_w for a predictor of within-target tau 0.5" if a.test == "tau" else
            "beyond (source and target effects removed) for a predictor of the pair effect alone")
    print(f"power of {what} (p < 0.05); {a.reps} families per cell, {a.perms} task permutations each; null = "
          "false-positive rate")
    print(f"{'design':<13}{'seeds':>6}" + "".join(f"{k:>7}" for k in tasks) + "   (tasks)")
    for design in ("unstructured", "graded"):
        for n in seeds:
            for null in (False, True):
                cells = [power(k, n, design, null, a.reps, a.perms, seed=1000 * k + n, test=a.test) for k in tasks]
                label = f"{design}{' null' if null else ''}"
                print(f"{label:<13}{n:>6}" + "".join(f"{c:>7.2f}" for c in cells))


if __name__ == "__main__":
    main()
