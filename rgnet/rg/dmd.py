"""Dynamic mode decomposition (Koopman) of RG trajectories, through thin SVDs only.

Snapshots are pooled over runs as pairs ``(x_n, x_{n+1})`` (never chaining one run onto another); the
data matrices are ``X, Y`` of shape ``(D, m)`` with ``D`` features and ``m`` pairs. Only thin SVDs and
``D x r`` products are formed, so ``D`` can be hundreds of thousands (flattened weights).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from rgnet.errors import ConfigError
from rgnet.rg.trajectory import as_runs, feature_dim, resolve_scale_factor, snapshot_pairs

METHODS = ("exact", "tls")
#: Below this many singular values the Gavish-Donoho median noise estimate is meaningless.
MIN_SINGULAR_VALUES_FOR_GD = 8


def numerical_rank(s: np.ndarray, shape: tuple[int, int]) -> int:
    return int(np.sum(s > s[0] * max(shape) * np.finfo(float).eps)) if s.size and s[0] > 0 else 0


def gavish_donoho_rank(singular_values: np.ndarray, shape: tuple[int, int]) -> int:
    """Optimal hard-threshold rank for unknown noise (Gavish & Donoho 2014).

    Threshold ``omega(beta) * median(sigma)`` with ``beta = min(shape) / max(shape)`` and
    ``omega(beta) ~ 0.56 beta^3 - 0.95 beta^2 + 1.82 beta + 1.43``. With fewer than
    ``MIN_SINGULAR_VALUES_FOR_GD`` singular values the numerical rank is returned instead.
    """
    s = np.asarray(singular_values, dtype=float)
    numerical = numerical_rank(s, shape)
    if s.size < MIN_SINGULAR_VALUES_FOR_GD:
        return max(numerical, 1)
    beta = min(shape) / max(shape)
    omega = 0.56 * beta**3 - 0.95 * beta**2 + 1.82 * beta + 1.43
    return int(max(1, min(numerical, np.sum(s > omega * np.median(s)))))


def _svd(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD ``a = U S V*`` of a ``(D, m)`` matrix.

    For tall matrices (``D > 4 m``) this is the method of snapshots: eigen-decompose the ``m x m`` Gram
    matrix, then ``U = A V / S``; singular values below ``~1e-8 S_max`` lose relative accuracy, which
    does not matter after rank truncation. Columns of ``U`` for zero singular values are zero.
    """
    n_rows, n_cols = a.shape
    if n_rows <= 4 * n_cols:
        return np.linalg.svd(a, full_matrices=False)
    evals, v = np.linalg.eigh(a.T @ a)
    order = np.argsort(evals)[::-1]
    s = np.sqrt(np.clip(evals[order], 0.0, None))
    v = v[:, order]
    s_safe = np.where(s > s[0] * 1e-12, s, np.inf) if s[0] > 0 else np.full_like(s, np.inf)
    return (a @ v) / s_safe, s, v.T


def _thin_svd(a: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u, s, vh = _svd(a)
    return u[:, :rank], s[:rank], vh[:rank]


def _exact_dmd(y: np.ndarray, u: np.ndarray, s: np.ndarray, vh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tu et al. (2014), given the rank-r SVD ``X = U S V*``: ``A_tilde = U* Y V S^-1``, modes ``Y V S^-1 W``."""
    yv = (y @ vh.conj().T) / s
    lam, w = np.linalg.eig(u.conj().T @ yv)
    return lam, yv @ w


def _affine_fixed_point(x: np.ndarray, y: np.ndarray, rank: int) -> np.ndarray:
    """Fixed point of ``y = A x + c`` with ``A`` restricted to the leading rank-``r`` subspace of centred ``X``.

    ``x* = x_mean + U z + (1 - U U*)(y_mean - x_mean)`` with ``z = (1 - A_tilde)^-1 U*(y_mean - x_mean)``.
    """
    xm, ym = x.mean(1, keepdims=True), y.mean(1, keepdims=True)
    u, s, vh = _thin_svd(x - xm, rank)
    a_tilde = u.conj().T @ ((y - ym) @ vh.conj().T) / s
    drift = ym - xm
    proj = u.conj().T @ drift
    z = np.linalg.solve(np.eye(rank) - a_tilde, proj)
    return (xm + u @ z + drift - u @ proj).real.ravel()


def dmd(
    traj: xr.DataArray,
    rank: int | None = None,
    delays: int = 0,
    method: str = "exact",
    center: str | np.ndarray | xr.DataArray | None = None,
    b: float | None = None,
) -> xr.Dataset:
    """Dynamic mode decomposition of a trajectory: eigenvalues of the best linear map ``x_{n+1} = A x_n``.

    Parameters
    ----------
    traj : xr.DataArray
        Trajectory with dims ``(run, level, feature)`` (``run`` optional; the feature dim may be named
        ``coupling``, ``component`` or anything else).
    rank : int, optional
        Truncation rank; default by the Gavish-Donoho optimal hard threshold on the singular values of
        ``X`` (numerical rank if there are fewer than 8 of them: then choose the rank yourself).
    delays : int
        Time-delay (Hankel) embedding: snapshots ``[x_n; ...; x_{n+delays}]``, built within each run.
    method : {"exact", "tls"}
        Exact DMD (Tu et al. 2014) or total-least-squares DMD (Hemati et al. 2017: ``X`` and ``Y`` are
        projected onto the leading ``rank`` right singular vectors of ``[X; Y]`` before exact DMD);
        TLS removes the noise-induced bias towards damping.
    center : None, "fixed_point" or array
        Subtract a point before the decomposition: ``"fixed_point"`` estimates the fixed point of the
        affine map ``y = A x + c`` in the rank-``r`` subspace; an array (dims ``(feature,)``) is used as given.
    b : float, optional
        Scale factor per level (default ``traj.attrs["scale_factor"]`` if present); adds ``exponents(mode)``.

    Returns
    -------
    xr.Dataset
        ``eigenvalues(mode)`` (complex, by decreasing modulus), ``modes(feature, mode)`` (complex exact
        modes, unit norm; the first delay block when ``delays > 0``), ``amplitudes(mode)`` (complex
        amplitudes of the mean level-0 snapshot), ``singular_values(sv)``, ``center(feature)`` when
        centred, and ``exponents(mode)`` when ``b`` is known. Attribute ``rank``.
    """
    if method not in METHODS:
        raise ConfigError(f"Unknown DMD method {method!r}; choose from {list(METHODS)}.")
    if delays < 0:
        raise ConfigError(f"delays must be 0 or more, got {delays}.")
    feat = feature_dim(traj)
    traj = as_runs(traj)
    values = np.asarray(traj.values, dtype=float)
    n_feat = values.shape[-1]
    x_rows, y_rows, _ = snapshot_pairs(values, delays)
    x, y = x_rows.T, y_rows.T  # (features * (delays + 1), pairs)
    u, x_sv, vh = _svd(x)
    r = gavish_donoho_rank(x_sv, x.shape) if rank is None else int(rank)
    numerical = numerical_rank(x_sv, x.shape)
    if not 1 <= r <= numerical:
        raise ConfigError(f"rank must be between 1 and {numerical} (the numerical rank of the snapshots), got {r}.")

    centre = None
    if isinstance(center, str):
        if center != "fixed_point":
            raise ConfigError(f"Unknown center {center!r}; use None, 'fixed_point' or an array of features.")
        centre = _affine_fixed_point(x[:n_feat], y[:n_feat], min(r, n_feat, x.shape[1] - 1))
    elif center is not None:
        centre = np.asarray(center, dtype=float).ravel()
        if centre.size != n_feat:
            raise ConfigError(f"center has {centre.size} values but the trajectory has {n_feat} features.")
    if centre is not None:
        tiled = np.tile(centre, delays + 1)[:, None]
        x, y = x - tiled, y - tiled
    if method == "tls":
        v_xy = _thin_svd(np.concatenate([x, y]), r)[2]  # (r, pairs): never form the pairs x pairs projector
        x, y = (x @ v_xy.conj().T) @ v_xy, (y @ v_xy.conj().T) @ v_xy
    if method == "tls" or centre is not None:
        u, s, vh = _thin_svd(x, r)
    else:
        u, s, vh = u[:, :r], x_sv[:r], vh[:r]
    lam, modes = _exact_dmd(y, u, s, vh)
    order = np.argsort(-np.abs(lam), kind="stable")
    lam, modes = lam[order].astype(complex), modes[:, order].astype(complex)
    norms = np.linalg.norm(modes, axis=0)
    modes = modes / np.where(norms > 0, norms, 1.0)

    start = np.concatenate([values[:, k] for k in range(delays + 1)], axis=1)
    start = start[np.all(np.isfinite(start), axis=1)].mean(0)
    if centre is not None:
        start = start - np.tile(centre, delays + 1)
    amplitudes = np.linalg.lstsq(modes, start.astype(complex), rcond=None)[0]

    coords = {"mode": np.arange(r), "sv": np.arange(x_sv.size)}
    if feat in traj.coords:
        coords["feature"] = traj[feat].values
    for name in traj.coords:
        if traj[name].dims == (feat,) and name != feat:
            coords[name] = ("feature", traj[name].values)
    out = xr.Dataset(
        {
            "eigenvalues": (("mode",), lam, {"long_name": "DMD eigenvalues (Koopman spectrum)", "units": "1"}),
            "modes": (("feature", "mode"), modes[:n_feat], {"long_name": "DMD modes (exact, unit norm)", "units": "1"}),
            "amplitudes": (("mode",), amplitudes, {"long_name": "mode amplitudes of the mean level-0 snapshot"}),
            "singular_values": (("sv",), x_sv, {"long_name": "singular values of the snapshot matrix X"}),
        },
        coords=coords,
        attrs={"rank": r, "method": method, "delays": int(delays), "n_pairs": int(x.shape[1])},
    )
    if centre is not None:
        out["center"] = (("feature",), centre, {"long_name": "point subtracted from every snapshot"})
    if b is not None or "scale_factor" in traj.attrs:
        b = resolve_scale_factor(traj, b)
        expo = np.log(np.abs(lam)) / np.log(b)
        out["exponents"] = (("mode",), expo, {"long_name": "y = ln|lambda| / ln b", "units": "1"})
        out.attrs["scale_factor"] = b
    return out
