"""Distances between the signatures of two runs, and the ``(run, run2)`` distance matrix of a signature.

Spectra are compared with the Wasserstein-1 distance between their eigenvalue sets in the complex plane
(2302.09160: Euclidean cost, optimal one-to-one matching with ``linear_sum_assignment``, mean matched cost).
**Unequal counts** (the Gavish-Donoho rank differs between runs) are handled by ``unequal``:

- ``"pad"`` (default): the shorter set is padded with zeros. This is not a trick: a rank-``r`` DMD operator
  ``A_r = U A~ U*`` acts on the whole feature space, and its spectrum is ``eig(A~)`` plus ``D - r`` zeros (the
  discarded directions are mapped to zero). Padding compares the spectra of the two truncated operators on
  their ``max(r_a, r_b)`` leading eigenvalues, and equals 2302.09160's matched mean when the counts agree.
- ``"uniform"``: W1 between the uniform measures on the two sets (mass ``1/n`` and ``1/m``), an exact optimal
  transport problem (``scipy.optimize.linprog``); also equal to the matched mean when ``n = m``.
- ``"amplitude"``: W1 between measures with mass proportional to ``|amplitude|`` of each mode.

Exponent vectors are compared in units of their standard errors, vectors (fingerprints) by root mean square.
All distances are computed from each run alone, without task labels, which the permutation test requires.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.optimize import linear_sum_assignment, linprog

from rgnet.errors import ConfigError

UNEQUAL = ("pad", "uniform", "amplitude")


def w1_spectra(a, b, amplitudes_a=None, amplitudes_b=None, unequal: str = "pad") -> float:
    """Wasserstein-1 distance between two eigenvalue sets (complex; NaN entries are not part of a set).

    Parameters
    ----------
    a, b : array of complex
        Eigenvalues (unitless).
    amplitudes_a, amplitudes_b : array of complex, optional
        Mode amplitudes, used as masses with ``unequal="amplitude"``.
    unequal : {"pad", "uniform", "amplitude"}
        How sets of different sizes are compared (see the module docstring).

    Returns
    -------
    float
        Mean matched distance (``pad``) or the optimal transport cost between the two probability measures.
    """
    if unequal not in UNEQUAL:
        raise ConfigError(f"unknown unequal={unequal!r}; choose one of {', '.join(UNEQUAL)}")
    a, b = np.asarray(a, complex), np.asarray(b, complex)
    keep_a, keep_b = np.isfinite(a), np.isfinite(b)
    a, b = a[keep_a], b[keep_b]
    if a.size == 0 or b.size == 0:
        return np.nan
    if unequal == "pad":
        n = max(a.size, b.size)
        a, b = np.pad(a, (0, n - a.size)), np.pad(b, (0, n - b.size))
        cost = np.abs(a[:, None] - b[None, :])
        rows, cols = linear_sum_assignment(cost)
        return float(cost[rows, cols].mean())
    if unequal == "uniform":
        wa, wb = np.full(a.size, 1 / a.size), np.full(b.size, 1 / b.size)
    else:
        if amplitudes_a is None or amplitudes_b is None:
            raise ConfigError("unequal='amplitude' needs the mode amplitudes of both spectra")
        wa = np.abs(np.asarray(amplitudes_a, complex)[keep_a])
        wb = np.abs(np.asarray(amplitudes_b, complex)[keep_b])
        if not (wa.sum() > 0 and wb.sum() > 0):
            return np.nan
        wa, wb = wa / wa.sum(), wb / wb.sum()
    return optimal_transport(np.abs(a[:, None] - b[None, :]), wa, wb)


def optimal_transport(cost: np.ndarray, wa: np.ndarray, wb: np.ndarray) -> float:
    """Minimal cost of moving the measure ``wa`` onto ``wb`` (both summing to one) with a ``cost`` matrix."""
    n, m = cost.shape
    rows = np.kron(np.eye(n), np.ones((1, m)))   # sum_j P_ij = wa_i
    cols = np.kron(np.ones((1, n)), np.eye(m))   # sum_i P_ij = wb_j
    res = linprog(cost.ravel(), A_eq=np.vstack([rows, cols])[:-1], b_eq=np.concatenate([wa, wb])[:-1],
                  bounds=(0, None), method="highs")
    return float(res.fun)


def run_distances(sig: xr.Dataset, unequal: str = "pad") -> xr.DataArray:
    """Distance matrix ``(run, run2)`` between the runs of one signature Dataset (from :func:`signatures`).

    The distance follows ``sig.attrs["distance"]``: ``spectrum`` (:func:`w1_spectra` on ``eigenvalues``),
    ``standardised`` (:func:`standardised_distances` on ``exponent`` / ``exponent_se``) or ``l2``
    (:func:`rms_distances` on ``vector``).
    """
    kind = sig.attrs.get("distance")
    if kind == "spectrum":
        lam = sig["eigenvalues"].transpose("run", ...).values
        amp = sig["amplitudes"].transpose("run", ...).values
        n = lam.shape[0]
        d = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                d[i, j] = d[j, i] = w1_spectra(lam[i], lam[j], amp[i], amp[j], unequal)
        units = "1 (eigenvalue units)"
    elif kind == "standardised":
        d = standardised_distances(sig["exponent"].transpose("run", ...).values,
                                   sig["exponent_se"].transpose("run", ...).values)
        units = "standard errors"
    elif kind == "l2":
        d = rms_distances(sig["vector"].transpose("run", ...).values)
        units = sig["vector"].attrs.get("units", "1")
    else:
        raise ConfigError(f"signature Dataset has distance {kind!r}; expected one of spectrum, standardised, l2")
    coords = {"run": sig["run"].values if "run" in sig.coords else np.arange(d.shape[0])}
    for c in ("task", "seed", "run_id"):
        if c in sig.coords:
            coords[c] = ("run", sig[c].values)
    out = xr.DataArray(d, dims=("run", "run2"), coords=coords, name="distance",
                       attrs={"long_name": f"distance between runs ({kind})", "units": units,
                              "signature": sig.attrs.get("signature", "")})
    return out


def standardised_distances(values: np.ndarray, se: np.ndarray) -> np.ndarray:
    """``sqrt(mean_k (y_ik - y_jk)^2 / (se_ik^2 + se_jk^2))`` over components finite in both runs.

    Where a pair lacks standard errors, the component's spread over all runs (ddof 1, label-free) stands in
    for ``sqrt(se_i^2 + se_j^2) / sqrt(2)``, i.e. the variance is ``2 * spread^2``.
    """
    y = np.asarray(values, float).reshape(len(values), -1)
    s2 = np.asarray(se, float).reshape(len(values), -1) ** 2
    with np.errstate(invalid="ignore"):
        spread2 = np.nanvar(y, axis=0, ddof=1) if len(y) > 1 else np.full(y.shape[1], np.nan)
    var = s2[:, None, :] + s2[None, :, :]
    fallback = np.broadcast_to(2 * spread2, var.shape)
    var = np.where(np.isfinite(var) & (var > 0), var, fallback)
    diff2 = (y[:, None, :] - y[None, :, :]) ** 2
    ok = np.isfinite(diff2) & np.isfinite(var) & (var > 0)
    terms = np.where(ok, diff2 / np.where(ok, var, 1.0), 0.0)
    with np.errstate(invalid="ignore"):
        d = np.sqrt(terms.sum(-1) / ok.sum(-1))
    np.fill_diagonal(d, 0.0)
    return d


def rms_distances(values: np.ndarray) -> np.ndarray:
    """Root-mean-square difference over the components finite in both runs (``L2 / sqrt(count)``)."""
    v = np.asarray(values, float).reshape(len(values), -1)
    diff2 = (v[:, None, :] - v[None, :, :]) ** 2
    ok = np.isfinite(diff2)
    with np.errstate(invalid="ignore"):
        d = np.sqrt(np.where(ok, diff2, 0.0).sum(-1) / ok.sum(-1))
    np.fill_diagonal(d, 0.0)
    return d
