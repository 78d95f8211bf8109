"""Fixed points and the linearised RG map from snapshot pairs ``g_{n+1} = F(g_n)`` pooled over runs."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.optimize import linear_sum_assignment

from rgnet.errors import ConfigError
from rgnet.rg.trajectory import as_runs, resolve_scale_factor, snapshot_pairs

MODELS = ("affine", "quadratic")
METHODS = ("ols", "tls")


def _quadratic_features(x: np.ndarray) -> np.ndarray:
    """``[x, x_i x_j (i <= j)]`` for rows of ``x``."""
    i, j = np.triu_indices(x.shape[1])
    return np.concatenate([x, x[:, i] * x[:, j]], axis=1)


def _fit_affine(x: np.ndarray, y: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``y = A x + c``; return ``(A, c)``. TLS: errors in both ``x`` and ``y`` (centred data)."""
    xm, ym = x.mean(0), y.mean(0)
    xc, yc = x - xm, y - ym
    c_dim = x.shape[1]
    if method == "ols":
        a_t = np.linalg.lstsq(xc, yc, rcond=None)[0]
    else:
        v = np.linalg.svd(np.concatenate([xc, yc], axis=1), full_matrices=False)[2].T
        v12, v22 = v[:c_dim, c_dim:], v[c_dim:, c_dim:]
        a_t = -v12 @ np.linalg.inv(v22)
    a = a_t.T
    return a, ym - a @ xm


def _fit(x: np.ndarray, y: np.ndarray, model: str, method: str, guess: np.ndarray | None):
    """Return ``(fixed_point, jacobian_at_fixed_point, residual_rms)``."""
    if model == "affine":
        a, c = _fit_affine(x, y, method)
        fixed = np.linalg.solve(np.eye(len(c)) - a, c)
        resid = y - x @ a.T - c
        return fixed, a, float(np.sqrt(np.mean(resid**2)))
    # quadratic: expand around a centre so that the fixed point is found by Newton from the affine guess
    centre = x.mean(0) if guess is None else guess
    feats = _quadratic_features(x - centre)
    coef_a, c = _fit_affine(feats, y, method)
    resid = y - feats @ coef_a.T - c
    d = x.shape[1]
    i, j = np.triu_indices(d)

    def jac(z: np.ndarray) -> np.ndarray:
        dz = z - centre
        dquad = np.zeros((len(i), d))  # d(dz_i dz_j) / dz_m
        dquad[np.arange(len(i)), i] += dz[j]
        dquad[np.arange(len(i)), j] += dz[i]
        return coef_a[:, :d] + coef_a[:, d:] @ dquad

    z = centre.copy()
    for _ in range(50):
        f = _quadratic_features((z - centre)[None])[0] @ coef_a.T + c
        step = np.linalg.solve(jac(z) - np.eye(d), -(f - z))
        z = z + step
        if np.max(np.abs(step)) < 1e-14 * (1 + np.max(np.abs(z))):
            break
    return z, jac(z), float(np.sqrt(np.mean(resid**2)))


def _n_params(model: str, d: int) -> int:
    return d + 1 if model == "affine" else d + 1 + d * (d + 1) // 2


def _fit_local(x, y, model, method, window):
    """Fit on all pairs; with ``window``, refit on the pairs within ``window`` of the fixed point.

    The fixed point is re-estimated until the selection settles; when fewer pairs than the model needs
    lie inside the window, the nearest ones are used instead.
    """
    if window is None:
        return _fit(x, y, model, method, None)
    fixed = _fit(x, y, "affine", method, None)[0]
    near = np.ones(len(x), bool)
    n_min = _n_params(model, x.shape[1]) + 1
    for _ in range(10):
        dist = np.linalg.norm(x - fixed, axis=1)
        new = dist <= max(window, np.sort(dist)[min(n_min, len(x)) - 1])
        if np.array_equal(new, near):
            break
        near = new
        fixed = _fit(x[near], y[near], "affine", method, None)[0]
    return _fit(x[near], y[near], model, method, fixed)


def _spectrum(jac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues sorted by decreasing modulus (of a conjugate pair, the half with Im > 0 first); unit
    eigenvectors with largest component real positive."""
    lam, vec = np.linalg.eig(jac)
    order = np.lexsort((-lam.imag, -np.abs(lam)))
    lam, vec = lam[order], vec[:, order]
    vec = vec / np.linalg.norm(vec, axis=0)
    pivot = vec[np.argmax(np.abs(vec), axis=0), np.arange(vec.shape[1])]
    return lam.astype(complex), (vec * (np.abs(pivot) / pivot)).astype(complex)


def conjugate_modes(lam: np.ndarray) -> list[tuple[int, ...]]:
    """The modes of a real map: ``(k,)`` for a real eigenvalue, ``(k, k')`` for a conjugate pair (the half with
    Im > 0 first), which is one mode, a rotation in the real plane spanned by Re v and Im v."""
    lam = np.asarray(lam, complex)
    scale = 1e-9 * max(1.0, float(np.abs(lam).max(initial=0.0)))
    groups, used = [], set()
    for k in np.argsort(-lam.imag, kind="stable"):
        if k in used:
            continue
        used.add(int(k))
        if lam[k].imag > scale:
            rest = [j for j in range(len(lam)) if j not in used]
            partner = min(rest, key=lambda j: abs(lam[j] - np.conj(lam[k])), default=None)
            if partner is not None and abs(lam[partner] - np.conj(lam[k])) <= scale:
                used.add(partner)
                groups.append((int(k), int(partner)))
                continue
        groups.append((int(k),))
    return sorted(groups, key=min)


def _match(ref: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Reorder ``lam`` to best match ``ref``: one-to-one, Euclidean distance between ``(Re, |Im|)`` points, so
    that the two halves of a conjugate pair are interchangeable (which half goes where does not matter below)."""
    fold = lambda z: np.c_[z.real, np.abs(z.imag)]  # noqa: E731
    cost = np.linalg.norm(fold(ref)[:, None, :] - fold(lam)[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    return lam[cols[np.argsort(rows)]]


def _replicate(matched: np.ndarray, groups: list[tuple[int, ...]]) -> np.ndarray:
    """``(modulus, Re, |Im|)`` per mode of one bootstrap replicate, given its eigenvalues matched to the modes.

    A conjugate pair is one mode: both halves get the geometric mean of the moduli of the two eigenvalues matched
    to it (the square root of the determinant of the map on that plane, smooth where the pair turns real), the
    mean of their real parts and the mean of their |Im|; a real mode gets its own eigenvalue's values."""
    out = np.empty((len(matched), 3))
    for g in groups:
        m = matched[list(g)]
        out[list(g)] = np.prod(np.abs(m)) ** (1 / len(g)), m.real.mean(), np.abs(m.imag).mean()
    return out


def classify(abs_eigenvalues: np.ndarray, tol: float, abs_ci: np.ndarray | None = None) -> np.ndarray:
    """The interval of |lambda| decides: ``relevant`` if it lies above 1, ``irrelevant`` below 1, ``marginal``
    inside ``1 ± tol``, else ``undecided``. Without an interval (NaN) the point estimate decides alike:
    ``relevant`` above ``1 + tol``, ``irrelevant`` below ``1 - tol``, else ``marginal``."""
    a = np.asarray(abs_eigenvalues, float)
    lo, hi = (np.full_like(a, np.nan), np.full_like(a, np.nan)) if abs_ci is None else np.asarray(abs_ci, float).T
    point = np.where(a > 1 + tol, "relevant", np.where(a < 1 - tol, "irrelevant", "marginal"))
    by_ci = np.where(lo > 1, "relevant", np.where(hi < 1, "irrelevant", np.where(
        (lo >= 1 - tol) & (hi <= 1 + tol), "marginal", "undecided")))
    return np.where(np.isfinite(lo) & np.isfinite(hi), by_ci, point).astype(str)


def linearise(
    traj: xr.DataArray,
    b: float | None = None,
    model: str = "affine",
    method: str = "ols",
    n_boot: int = 200,
    tol: float = 0.05,
    window: float | None = None,
    ci: float = 0.95,
    seed: int = 0,
) -> xr.Dataset:
    """Fixed point and linearised RG map fitted on snapshot pairs pooled over runs.

    Every pair ``(g_n, g_{n+1})`` comes from one run; runs are never chained end to end.

    Parameters
    ----------
    traj : xr.DataArray
        Trajectory with dims ``(run, level, coupling)`` (``run`` optional).
    b : float, optional
        Scale factor per level (default: ``traj.attrs["scale_factor"]``); exponents are ``ln|lambda| / ln b``.
    model : {"affine", "quadratic"}
        ``"affine"``: ``g' = A g + c``, fixed point ``(1 - A)^-1 c``, Jacobian ``A``. ``"quadratic"``: adds
        all quadratic terms; fixed point by Newton, Jacobian evaluated there (nonlinear option).
    method : {"ols", "tls"}
        Ordinary least squares (errors in ``g'`` only) or total least squares (errors in both).
    n_boot : int
        Bootstrap replicates: runs are resampled with replacement (with one run, snapshot pairs are). Each
        replicate's eigenvalues are matched one-to-one to the point estimate's (``linear_sum_assignment`` on
        the points ``(Re, |Im|)``); a conjugate pair is one mode, whose replicate modulus is the geometric mean
        of the two eigenvalues matched to it, so both halves get one interval.
    tol : float
        Modes with ``| |lambda| - 1 | <= tol`` are ``marginal``.
    window : float, optional
        Local fit: keep only pairs whose ``g_n`` lies within this Euclidean distance of the fixed point
        (re-estimated a few times). Default uses every pair.
    ci : float
        Confidence level of the bootstrap intervals (percentile method).
    seed : int
        Seed of the bootstrap (same data and seed, same intervals).

    Returns
    -------
    xr.Dataset
        ``fixed_point(coupling)``, ``jacobian(coupling, coupling_in)``, ``eigenvalues(mode)`` (complex,
        sorted by decreasing modulus, of a conjugate pair the half with Im > 0 first), ``partner(mode)`` (the
        conjugate partner's mode, -1 for a real eigenvalue), ``eigenvectors(coupling, mode)`` (complex, unit
        norm; a pair's Re v and Im v span the plane it rotates),
        ``exponents(mode)``, ``kind(mode)``, and bootstrap intervals ``fixed_point_ci(coupling, bound)``,
        ``eigenvalues_ci(mode, bound)`` (real and imaginary parts bounded separately; the Im interval of a
        real eigenvalue is symmetric about 0),
        ``abs_eigenvalues_ci(mode, bound)``, ``exponents_ci(mode, bound)``.
    """
    if model not in MODELS:
        raise ConfigError(f"Unknown model {model!r}; choose from {list(MODELS)}.")
    if method not in METHODS:
        raise ConfigError(f"Unknown method {method!r}; choose from {list(METHODS)}.")
    b = resolve_scale_factor(traj, b)
    traj = as_runs(traj)
    names = traj["coupling"].values if "coupling" in traj.coords else np.arange(traj.shape[-1])
    feat = traj.dims[-1]
    x, y, run_of_pair = snapshot_pairs(np.asarray(traj.values, dtype=float))
    d = x.shape[1]
    n_params = _n_params(model, d)
    if x.shape[0] <= n_params:
        raise ConfigError(
            f"{x.shape[0]} snapshot pairs cannot fit a {model} map of {d} couplings ({n_params} parameters per "
            "coupling); add runs or levels, or use fewer couplings."
        )
    fixed, jac, rms = _fit_local(x, y, model, method, window)
    lam, vec = _spectrum(jac)

    groups = conjugate_modes(lam)
    rng = np.random.default_rng(seed)
    pairs_of_run = [np.flatnonzero(run_of_pair == r) for r in np.unique(run_of_pair)]
    boot_fixed, boot_modes = [], []
    for _ in range(n_boot):
        if len(pairs_of_run) > 1:
            pick = np.concatenate([pairs_of_run[r] for r in rng.integers(0, len(pairs_of_run), len(pairs_of_run))])
        else:
            pick = rng.integers(0, x.shape[0], x.shape[0])
        if len(np.unique(pick)) <= n_params:
            continue  # an underdetermined resample gives a minimum-norm fit with spurious zero eigenvalues
        try:
            f_b, j_b, _ = _fit_local(x[pick], y[pick], model, method, window)
        except (np.linalg.LinAlgError, ConfigError):
            continue
        boot_fixed.append(f_b)
        boot_modes.append(_replicate(_match(lam, np.linalg.eigvals(j_b).astype(complex)), groups))
    alpha = (1 - ci) / 2 * 100
    bounds_pct = [alpha, 100 - alpha]
    pct = f"{ci:.0%}"

    def interval(samples: list, transform=lambda v: v) -> np.ndarray:
        if len(samples) < 2:
            return np.full((d, 2), np.nan)
        return np.percentile(transform(np.asarray(samples)), bounds_pct, axis=0).T

    abs_ci = interval(boot_modes, lambda v: v[..., 0])
    re_ci = interval(boot_modes, lambda v: v[..., 1])
    im_ci = interval(boot_modes, lambda v: v[..., 2])  # of |Im|: signed below
    if len(boot_modes) >= 2:
        im_abs = np.abs(np.asarray(boot_modes)[..., 2])
        for g in groups:
            if len(g) == 2:  # the half with Im < 0 mirrors the other's interval
                im_ci[g[1]] = -im_ci[g[0]][::-1]
            else:  # a real mode: the sign of Im in a replicate is arbitrary, so its interval is symmetric
                q = np.percentile(im_abs[:, g[0]], 100 * ci)
                im_ci[g[0]] = [-q, q]
    lam_ci = re_ci + 1j * im_ci
    log_b = np.log(b)
    with np.errstate(divide="ignore"):
        expo = np.log(np.abs(lam)) / log_b
        expo_ci = np.log(abs_ci) / log_b  # y is monotonic in |lambda|, so its percentiles follow
    fixed_ci = interval(boot_fixed)

    modes = np.arange(d)
    partner = np.full(d, -1)
    for g in groups:
        if len(g) == 2:
            partner[list(g)] = g[::-1]
    bound = ["lower", "upper"]
    ds = xr.Dataset(
        {
            "fixed_point": ((feat,), fixed, {"long_name": "fixed point of the fitted RG map"}),
            "jacobian": (
                (feat, f"{feat}_in"),
                jac,
                {"long_name": "Jacobian of the RG map at the fixed point (d g'[row] / d g[col])"},
            ),
            "eigenvalues": (("mode",), lam, {"long_name": "eigenvalues of the linearised RG map", "units": "1"}),
            "eigenvectors": (
                (feat, "mode"),
                vec,
                {"long_name": "right eigenvectors of the linearised RG map (unit norm)", "units": "1"},
            ),
            "exponents": (("mode",), expo, {"long_name": "scaling exponent y = ln|lambda| / ln b", "units": "1"}),
            "kind": (("mode",), classify(np.abs(lam), tol, abs_ci),
                     {"long_name": "relevant, irrelevant, marginal or undecided, by the interval of |lambda|"}),
            "partner": (("mode",), partner, {"long_name": "mode of the conjugate partner (-1: real eigenvalue)"}),
            "fixed_point_ci": ((feat, "bound"), fixed_ci, {"long_name": f"{pct} bootstrap interval of g*"}),
            "eigenvalues_ci": (
                ("mode", "bound"),
                lam_ci,
                {"long_name": f"{pct} bootstrap interval of the real and imaginary parts of the eigenvalues"},
            ),
            "abs_eigenvalues_ci": (("mode", "bound"), abs_ci, {"long_name": f"{pct} bootstrap interval of |lambda|"}),
            "exponents_ci": (("mode", "bound"), expo_ci, {"long_name": f"{pct} bootstrap interval of y"}),
        },
        coords={feat: names, f"{feat}_in": names, "mode": modes, "bound": bound},
        attrs={
            "scale_factor": b,
            "model": model,
            "method": method,
            "n_boot": int(len(boot_modes)),
            "n_pairs": int(x.shape[0]),
            "n_runs": len(pairs_of_run),
            "tol": float(tol),
            "window": float(window) if window is not None else np.nan,
            "residual_rms": rms,
        },
    )
    return ds
