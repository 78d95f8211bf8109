"""Calibration and power of the same-class permutation test (rgnet.universality).

    python scripts/universality_checks.py [--runs DIR_OR_GLOB] [--replicates 500] [--splits 500]

1. Calibration on fresh null data: two pseudo-tasks drawn from one planted linear flow (same spectrum), DMD
   spectra per run, W1 distances, the test's randomised p-value; a KS test against U(0, 1) over replicates, and
   the rejection rate of the conventional p-value at alpha = 0.1.
2. Power on planted flows whose spectra differ by ``delta``: rejection rate at alpha = 0.1 for n runs per task.
3. Calibration on real runs of one task (``--runs``, e.g. 8 seeds of MNIST-1D): random splits into two
   pseudo-tasks, for every signature the files allow; KS test of the randomised p-values over splits. Given the
   runs, every split is equally likely, so this checks the implementation (distances that peek at labels, a
   wrong tie rule) rather than the data.
"""

from __future__ import annotations

import argparse
import glob

import numpy as np
import xarray as xr
from scipy import stats

from rgnet.universality import SIGNATURES, permutation_test, run_distances, signatures, w1_spectra
from rgnet.universality.signatures import spectrum

BASE = np.array([0.9, 0.6, 0.3])
Q = np.array([[1.0, 0.4, 0.1], [0.2, 1.0, 0.3], [0.1, 0.2, 1.0]])


def planted_run(eigs, rng, levels=13, noise=0.01) -> xr.DataArray:
    """x_{n+1} = Q diag(eigs) Q^-1 x_n + noise, from a random start (13 levels, as an IMP run with 12)."""
    a = Q @ np.diag(eigs) @ np.linalg.inv(Q)
    x = [rng.normal(size=3)]
    for _ in range(levels - 1):
        x.append(a @ x[-1] + noise * rng.normal(size=3))
    return xr.DataArray(np.array(x), dims=("level", "coupling"))


def planted_test(delta: float, n: int, rng) -> dict:
    spectra = [spectrum(planted_run(BASE - d, rng), rank=3)["eigenvalues"].values for d in [0.0] * n + [delta] * n]
    dist = np.array([[w1_spectra(a, b) for b in spectra] for a in spectra])
    return permutation_test(dist, n, rng=rng)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", help="run files of ONE task (a glob or directory) for the real-data calibration")
    ap.add_argument("--replicates", type=int, default=500)
    ap.add_argument("--splits", type=int, default=500)
    a = ap.parse_args()
    rng = np.random.default_rng(0)

    print("1. calibration, planted flows with one spectrum (fresh data per replicate)")
    for n in (3, 4, 6):
        res = [planted_test(0.0, n, rng) for _ in range(a.replicates)]
        p_rand = [r["p_value_randomised"] for r in res]
        reject = np.mean([r["p_value"] <= 0.1 for r in res])
        print(f"   n = {n} runs per task: KS p = {stats.kstest(p_rand, 'uniform').pvalue:.3f} "
              f"({a.replicates} replicates); P(p <= 0.1) = {reject:.3f}")

    print("\n2. power at alpha = 0.1: rejection rate when the spectra differ by delta "
          f"({a.replicates // 5} replicates per cell; base eigenvalues {BASE.tolist()})")
    deltas = (0.0, 0.02, 0.05, 0.1, 0.2)
    print("   n  " + "".join(f"{'delta ' + str(d):>12}" for d in deltas))
    for n in (3, 4, 6):
        rates = [np.mean([planted_test(d, n, rng)["p_value"] <= 0.1 for _ in range(a.replicates // 5)])
                 for d in deltas]
        print(f"   {n}  " + "".join(f"{r:>12.2f}" for r in rates))

    if a.runs:
        files = sorted(glob.glob(a.runs if any(c in a.runs for c in "*?[") else f"{a.runs}/*.h5"))
        print(f"\n3. calibration on {len(files)} runs of one task, random splits into two pseudo-tasks "
              f"({a.splits} splits)")
        skipped: dict[str, str] = {}
        sigs = signatures(files, list(SIGNATURES), skipped=skipped)
        for name, sig in sigs.items():
            d = run_distances(sig).values
            k = len(files) // 2
            p = []
            for _ in range(a.splits):
                order = rng.permutation(len(files))
                p.append(permutation_test(d[np.ix_(order, order)], k, rng=rng)["p_value_randomised"])
            print(f"   {name:<12} KS p = {stats.kstest(p, 'uniform').pvalue:.3f}; "
                  f"P(p <= 0.1) = {np.mean(np.array(p) <= 0.1):.3f}")
        for name, why in skipped.items():
            print(f"   {name:<12} not computed: {why}")


if __name__ == "__main__":
    main()
