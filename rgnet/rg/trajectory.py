"""Shared helpers for trajectories: validation, snapshot pairs and the scale factor ``b``.

A *trajectory* is a DataArray with dims ``(run, level, feature)`` where ``run`` is optional and the
feature dim is ``coupling`` (coarse-grained couplings) or ``component`` (flattened weights).
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from rgnet.errors import ConfigError


def feature_dim(traj: xr.DataArray) -> str:
    """Name of the one dim of ``traj`` that is neither ``run`` nor ``level``."""
    if not isinstance(traj, xr.DataArray):
        raise ConfigError(f"A trajectory must be an xarray.DataArray, not {type(traj).__name__}.")
    others = [d for d in traj.dims if d not in ("run", "level")]
    if "level" not in traj.dims or len(others) != 1:
        raise ConfigError(
            f"A trajectory needs dims (run, level, coupling) with run optional, but it has {traj.dims}."
        )
    return others[0]


def as_runs(traj: xr.DataArray) -> xr.DataArray:
    """Return ``traj`` with dims exactly ``(run, level, feature)``, adding a length-1 ``run`` dim if needed."""
    feat = feature_dim(traj)
    if "run" not in traj.dims:
        traj = traj.expand_dims(run=1)
    return traj.transpose("run", "level", feat)


def snapshot_pairs(values: np.ndarray, delays: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pool snapshot pairs ``(x_n, x_{n+1})`` over runs, never chaining one run onto another.

    Parameters
    ----------
    values : ndarray, shape (run, level, feature)
        Trajectories; levels that are NaN (runs of unequal length) are skipped.
    delays : int
        Number of time delays: each snapshot is the stack ``[x_n, x_{n+1}, ..., x_{n+delays}]``.

    Returns
    -------
    X, Y : ndarray, shape (pair, feature * (delays + 1))
        Snapshots and their successors.
    run_of_pair : ndarray of int, shape (pair,)
        Index of the run each pair comes from.
    """
    xs, ys, runs = [], [], []
    width = delays + 1
    for r, run in enumerate(values):
        run = run[np.all(np.isfinite(run), axis=1)]
        n_snap = run.shape[0] - width + 1
        if n_snap < 2:
            continue
        hankel = np.concatenate([run[k : k + n_snap] for k in range(width)], axis=1)
        xs.append(hankel[:-1])
        ys.append(hankel[1:])
        runs.append(np.full(n_snap - 1, r))
    if not xs:
        raise ConfigError(
            f"The trajectory has no run with {width + 1} finite levels; record more levels or use fewer delays."
        )
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(runs)


def resolve_scale_factor(traj: xr.DataArray, b: float | None) -> float:
    """The RG scale factor per level: ``b`` if given, else the trajectory's ``scale_factor`` attribute."""
    if b is None:
        b = traj.attrs.get("scale_factor")
    if b is None:
        raise ConfigError(
            "The scale factor per level is unknown; pass b=... (for IMP, b = 1/(1-p) with p the pruning fraction)."
        )
    b = float(b)
    if not b > 1.0:
        raise ConfigError(f"The scale factor b must be greater than 1, got {b}.")
    return b


def scale_factor(ds: xr.Dataset) -> float:
    """RG scale factor per IMP level, ``b = 1/(1-p)`` in density.

    Computed as the geometric mean of the density ratios ``density[n] / density[n+1]`` (over levels and
    runs); when the file has a single level it falls back to the pruning fraction in ``attrs["config"]``.

    Parameters
    ----------
    ds : xr.Dataset
        A run Dataset (dims ``level``, optional ``run``) with the coordinate ``density(level)``.

    Returns
    -------
    float
        The scale factor ``b`` (dimensionless, > 1).
    """
    if "density" in ds.coords and ds.sizes.get("level", 0) > 1:
        dens = np.asarray(ds["density"].transpose(..., "level").values, dtype=float)
        ratio = np.log(dens[..., :-1] / dens[..., 1:])
        ratio = ratio[np.isfinite(ratio)]
        if ratio.size and np.mean(ratio) > 0:
            return float(np.exp(np.mean(ratio)))
    try:

        fraction = float(json.loads(ds.attrs["config"])["prune"]["fraction"])
        return 1.0 / (1.0 - fraction)
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(
            "Cannot find the pruning scale factor: the Dataset needs a density(level) coordinate or a config attribute."
        ) from err
