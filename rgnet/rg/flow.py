"""Flow of weight distributions between IMP levels: Wasserstein-1 distances, speed, beta function.

Convention: every per-step quantity is labelled by the *source* level ``n`` and measures the step
``n -> n+1`` (so the last level has no entry).

Distances come from the stored quantile atoms ``w_qf`` (see :mod:`rgnet.theory`): the exact W1 between
them, close to the sample W1 of the trained weights (README). Files without them (schema 1, or
``hist_rewind``) fall back to the histograms: ``W1 = integral_0^1 |Q_a(t) - Q_b(t)| dt`` with ``Q`` the
quantile function of the histogram (uniform density inside each bin).

Choice for the shape question (does the distribution converge while its scale runs?): the distance
between the rescaled distributions of ``w / sigma``, ``sigma`` the stored ``w_std``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from rgnet.errors import ConfigError
from rgnet.rg.trajectory import feature_dim
from rgnet.theory import hist_quantile_function, w1_atoms

#: Number of points of the midpoint rule on t in (0, 1) for the quantile-function integral.
N_QUANTILE_POINTS = 2000


def bin_edges(ds: xr.Dataset) -> xr.DataArray:
    """Bin edges in weight units, dims ``(…, layer, edge)``: ``bin_bounds * bin_scale``."""
    bounds = ds["bin_bounds"].transpose(..., "bin", "bnd").values
    edges = np.concatenate([bounds[..., :, 0], bounds[..., -1:, 1]], axis=-1)
    dims = [d for d in ds["bin_bounds"].dims if d not in ("bin", "bnd")]
    return xr.DataArray(edges, dims=(*dims, "edge")) * ds["bin_scale"]


def quantile_functions(hist: xr.DataArray, edges: xr.DataArray) -> xr.DataArray:
    """Quantile functions of histograms (uniform density inside each bin).

    Parameters
    ----------
    hist : xr.DataArray
        Counts with a ``bin`` dim (any other dims broadcast).
    edges : xr.DataArray
        Bin edges with an ``edge`` dim of length ``n_bin + 1``, in the units of the result.

    Returns
    -------
    xr.DataArray
        ``Q(t)`` with the ``bin`` dim replaced by ``t`` (midpoints of ``N_QUANTILE_POINTS`` cells on (0, 1)).
    """
    t = (np.arange(N_QUANTILE_POINTS) + 0.5) / N_QUANTILE_POINTS
    q = xr.apply_ufunc(
        hist_quantile_function,
        hist,
        edges,
        kwargs={"t": t},
        input_core_dims=[["bin"], ["edge"]],
        output_core_dims=[["t"]],
        vectorize=True,
        dask="parallelized",
        output_dtypes=[float],
        dask_gufunc_kwargs={"output_sizes": {"t": t.size}},
    )
    return q.assign_coords(t=t)


def _step(da: xr.DataArray) -> xr.DataArray:
    """``da[n+1] - da[n]`` labelled by the source level ``n``."""
    return da.shift(level=-1) - da


def _has_atoms(ds: xr.Dataset, variable: str) -> bool:
    return variable == "hist" and "w_qf" in ds and bool(ds["w_qf"].notnull().any())


def _w1(a: xr.DataArray, b: xr.DataArray, atoms: bool) -> xr.DataArray:
    """W1 per remaining element between distributions ``a`` and ``b`` (atoms, or quantile functions on ``t``)."""
    if not atoms:
        return abs(a - b).mean("t")
    return xr.apply_ufunc(w1_atoms, a, b, input_core_dims=[["atom"], ["atom"]], vectorize=True,
                          dask="parallelized", output_dtypes=[float])


def _distributions(ds: xr.Dataset, variable: str) -> tuple[xr.DataArray, bool]:
    if variable not in ds:
        raise ConfigError(f"The Dataset has no histogram variable {variable!r}; use 'hist' or 'hist_rewind'.")
    if _has_atoms(ds, variable):
        return ds["w_qf"].astype(float), True
    return quantile_functions(ds[variable], bin_edges(ds)), False


def wasserstein(a: xr.Dataset, b: xr.Dataset, shape: bool = False, variable: str = "hist") -> xr.DataArray:
    """W1 between the weight distributions of two selections (levels of one run, or of two runs), per layer.

    Parameters
    ----------
    a, b : xr.Dataset
        Run Datasets (or selections such as ``ds.sel(level=3)``) that broadcast against each other.
    shape : bool
        Distance between the distributions of ``w / w_std`` (dimensionless) instead of ``w`` (weight units).
    variable : str
        ``"hist"`` (trained weights; exact from ``w_qf`` when stored) or ``"hist_rewind"``.
    """
    qa, atoms_a = _distributions(a, variable)
    qb, atoms_b = _distributions(b, variable)
    if atoms_a != atoms_b:  # one file without atoms: compare both as histograms
        qa, qb = (quantile_functions(x[variable], bin_edges(x)) for x in (a, b))
    if shape:
        qa, qb = qa / a["w_std"], qb / b["w_std"]
    out = _w1(qa, qb, atoms_a and atoms_b)
    return out.rename("w1_shape" if shape else "w1").assign_attrs(
        long_name="Wasserstein-1 distance" + (" of w/std" if shape else ""), units="1")


def wasserstein_flow(ds: xr.Dataset, variable: str = "hist") -> xr.Dataset:
    """Wasserstein-1 distances between successive levels' weight distributions, per layer.

    Parameters
    ----------
    ds : xr.Dataset
        Run Dataset (optionally with a ``run`` dim) with ``hist``, ``bin_bounds``, ``bin_scale`` and ``w_std``.
    variable : str
        Histogram variable: ``"hist"`` (trained weights) or ``"hist_rewind"`` (their rewound values).

    Returns
    -------
    xr.Dataset
        With dims ``(…, level, layer)`` labelled by the source level ``n`` of the step ``n -> n+1``:
        ``w1`` (W1 in weight units), ``w1_shape`` (W1 between distributions of ``w / w_std``,
        dimensionless), ``d_log_scale`` (``ln w_std[n+1] - ln w_std[n]``) and ``speed`` (root sum of
        squares of ``w1_shape`` over layers: how fast the shape still moves).
    """
    q, atoms = _distributions(ds, variable)
    q_shape = q / ds["w_std"]
    w1 = _w1(q.shift(level=-1), q, atoms)
    w1_shape = _w1(q_shape.shift(level=-1), q_shape, atoms)
    out = xr.Dataset(
        {
            "w1": w1.assign_attrs(long_name="Wasserstein-1 distance to the next level (in weight units)",
                                  units="1"),
            "w1_shape": w1_shape.assign_attrs(
                long_name="Wasserstein-1 distance of w/std to the next level", units="1"
            ),
            "d_log_scale": _step(np.log(ds["w_std"])).assign_attrs(
                long_name="change of ln std to the next level", units="1"
            ),
        }
    )
    out["speed"] = np.sqrt((w1_shape**2).sum("layer", min_count=1)).assign_attrs(
        long_name="shape flow speed (root sum of squares of w1_shape over layers)", units="1"
    )
    out = out.isel(level=slice(None, -1))
    out.attrs["description"] = "entry at level n measures the step from level n to level n+1"
    return out


def flow_speed(traj: xr.DataArray) -> xr.DataArray:
    """Euclidean length of each step of a trajectory, ``|g_{n+1} - g_n|``.

    Parameters
    ----------
    traj : xr.DataArray
        Trajectory with dims ``(run, level, coupling)`` (``run`` optional).

    Returns
    -------
    xr.DataArray
        Dims ``(…, level)`` labelled by the source level ``n``.
    """
    feat = feature_dim(traj)
    speed = np.sqrt((_step(traj) ** 2).sum(feat, min_count=1)).isel(level=slice(None, -1))
    return speed.rename("flow_speed").assign_attrs(
        long_name="distance to the next level's couplings", units=traj.attrs.get("units", "1")
    )


def beta_function(traj: xr.DataArray, b: float | None = None) -> xr.Dataset:
    """Discrete beta function: the step ``Delta g_n = g_{n+1} - g_n`` as a function of ``g_n``.

    Parameters
    ----------
    traj : xr.DataArray
        Trajectory with dims ``(run, level, coupling)`` (``run`` optional).
    b : float, optional
        Scale factor per level; if given, ``beta`` is divided by ``ln b`` (a derivative per log-scale).

    Returns
    -------
    xr.Dataset
        ``g(…, level, coupling)`` and ``beta(…, level, coupling)`` at source levels ``0 .. N-1``.
    """
    feature_dim(traj)
    denom = np.log(b) if b is not None else 1.0
    beta = (_step(traj) / denom).isel(level=slice(None, -1))
    return xr.Dataset(
        {
            "g": traj.isel(level=slice(None, -1)).assign_attrs(long_name="coupling at level n"),
            "beta": beta.assign_attrs(
                long_name="discrete beta function (g[n+1] - g[n])" + (" / ln b" if b is not None else ""),
                units=traj.attrs.get("units", "1"),
            ),
        }
    )


def _first_converged(d: np.ndarray, tol: float) -> int:
    finite = np.flatnonzero(np.isfinite(d))
    if finite.size == 0 or d[finite[-1]] >= tol:
        return -1
    bad = finite[d[finite] >= tol]
    return int(finite[0] if bad.size == 0 else bad[-1] + 1)


def fixed_point_level(x: xr.DataArray | xr.Dataset, tol: float = 1e-3) -> xr.DataArray:
    """First level from which the flow stays at a fixed point: every later step is shorter than ``tol``.

    Parameters
    ----------
    x : xr.DataArray or xr.Dataset
        Either a trajectory (dims ``(run, level, coupling)``; steps are Euclidean distances between
        successive levels), or step distances labelled by source level (dims ``(…, level, …)``, e.g.
        ``wasserstein_flow(ds)["w1_shape"]``; the largest over non-``run`` dims counts), or the
        Dataset from :func:`wasserstein_flow` (its ``w1_shape`` is used).
    tol : float
        Distance below which two successive theories count as the same.

    Returns
    -------
    xr.DataArray of int
        Level ``n`` such that ``d(m, m+1) < tol`` for all ``m >= n``, per run; ``-1`` if never.
    """
    if isinstance(x, xr.Dataset):
        x = x["w1_shape"]
    is_traj = any(d in x.dims for d in ("coupling", "component"))
    dist = flow_speed(x) if is_traj else x
    if "level" not in dist.dims:
        raise ConfigError(f"fixed_point_level needs a level dim, got dims {x.dims}.")
    others = [d for d in dist.dims if d not in ("run", "level")]
    if others:
        dist = dist.max(others)
    dist = dist.transpose(..., "level")
    values = np.atleast_2d(np.asarray(dist.values, dtype=float))
    levels = np.asarray(dist["level"].values)
    found = [_first_converged(row, tol) for row in values]
    found = [int(levels[i]) if i >= 0 else -1 for i in found]
    out = xr.DataArray(np.asarray(found, dtype=int), dims=("run",)) if "run" in dist.dims else xr.DataArray(found[0])
    if "run" in dist.dims:
        out = out.assign_coords(run=dist["run"].values) if "run" in dist.coords else out
    return out.rename("fixed_point_level").assign_attrs(
        long_name="first level from which every step is shorter than tol (-1: never)", units="1", tol=float(tol)
    )


__all__ = [
    "beta_function",
    "bin_edges",
    "fixed_point_level",
    "flow_speed",
    "quantile_functions",
    "wasserstein",
    "wasserstein_flow",
]
