"""Reading run files into xarray: one run, many runs (lazy, with a ``run`` dim), or the whole tree."""

from __future__ import annotations

import glob as _glob
import json
from pathlib import Path
from typing import Iterable

import h5py
import numpy as np
import xarray as xr

from rgnet.errors import StoreError
from rgnet.store.writer import BRANCHES, check_run_file, plain_attr

# config fields that become coordinates along ``run`` (select runs by task, seed, model, ...)
RUN_COORDS = {"task": ("task", "name"), "model": ("model", "name"), "seed": ("seed",),
              "fraction": ("prune", "fraction"), "scope": ("prune", "scope"), "rewind": ("prune", "rewind")}


def open_run(path: str | Path, group: str | None = None, chunks=None) -> xr.Dataset:
    """Open one run file (or a branch ``group`` of it) as an ``xr.Dataset`` with named dims.

    Only complete levels are shown. ``ds.attrs["config"]`` is the run's canonical JSON; ``ds.attrs["cfg"]``
    is not set (attrs must stay netCDF-serialisable) — use ``rgnet.config_of(ds)``.
    """
    p = Path(path)
    if not p.is_file():
        raise StoreError(f"run file {str(p)!r} does not exist; check the path")
    check_run_file(p)
    try:
        ds = xr.open_dataset(p, engine="h5netcdf", group=group, chunks=chunks)
    except OSError:
        raise StoreError(f"{str(p)!r} has no group {group!r}; its branches are "
                         f"{', '.join(branches(p)) or 'none'}") from None
    if "level_done" in ds:  # a branch: only the levels it has trained
        return ds.isel(level=np.flatnonzero(ds.level_done.values))
    n = int(ds.attrs.get("levels_complete", ds.sizes.get("level", 0)))
    return ds.isel(level=slice(0, n))


def read_levels(path: str | Path, variables: Iterable[str], group: str | None = None) -> tuple[np.ndarray, dict, dict]:
    """Fast path for tables: ``(levels, {name: values}, attrs)`` of a few per-level variables, read with h5py.

    Only complete levels (trunk) or trained levels (branch) are returned, as :func:`open_run` shows them.
    Variables the file does not have (written by an older schema) are left out of ``values``.
    """
    if not Path(path).is_file():
        raise StoreError(f"run file {str(path)!r} does not exist; check the path")
    check_run_file(Path(path))
    with h5py.File(path, "r") as f:
        g = f[group] if group else f
        attrs = {k: plain_attr(v) for k, v in g.attrs.items()}
        if "level_done" in g:
            idx = np.flatnonzero(g["level_done"][...])
        else:
            idx = np.arange(int(np.ravel(f.attrs["levels_complete"])[0]))
        values = {name: np.asarray(g[name][...])[idx] for name in variables if name in g}  # absent: older schema
        return np.asarray(g["level"][...])[idx], values, attrs


def branches(path: str | Path) -> list[str]:
    """Group paths of the branches in a run file (``branches/reinit``, ``branches/transfer_<id>`` ...)."""
    with h5py.File(path, "r") as f:
        return [f"{BRANCHES}/{name}" for name in sorted(f[BRANCHES])] if BRANCHES in f else []


def open_tree(path: str | Path) -> xr.DataTree:
    """The whole file (trunk, tensors, branches) as an ``xr.DataTree``."""
    check_run_file(Path(path))
    return xr.open_datatree(path, engine="h5netcdf")


def open_runs(paths: str | Path | Iterable[str | Path], group: str | None = None) -> xr.Dataset:
    """Open many runs lazily (dask) as one Dataset with a leading ``run`` dim.

    ``paths`` is a glob pattern, a directory (all ``*.h5`` in it) or a list of files. Runs with fewer levels
    are padded with NaN. Coordinates along ``run``: ``run_id``, ``path``, ``task``, ``model``, ``seed``,
    ``fraction``, ``scope``, ``rewind``, and every task parameter as ``task_<name>``.
    """
    files = _expand(paths)
    parts = [open_run(f, group=group, chunks={}) for f in files]
    coords = _run_coords(parts, files)
    ds = xr.concat(parts, dim="run", join="outer", combine_attrs="drop_conflicts",
                   data_vars="all", coords="different", compat="equals")
    return ds.assign_coords(coords)


def config_of(ds: xr.Dataset) -> dict:
    """The run config of a Dataset opened by rgnet, as a plain dict."""
    return json.loads(ds.attrs["config"])


def _expand(paths) -> list[str]:
    if isinstance(paths, (str, Path)):
        p = Path(paths)
        files = sorted(_glob.glob(str(p / "*.h5"))) if p.is_dir() else sorted(_glob.glob(str(p)))
    else:
        files = [str(x) for x in paths]
    if not files:
        raise StoreError(f"no run files match {paths!r}; pass files, a directory of .h5 files or a glob")
    return files


def _run_coords(parts: list[xr.Dataset], files: list[str]) -> dict[str, tuple]:
    cfgs = [config_of(d) for d in parts]
    coords: dict[str, tuple] = {"run_id": ("run", [d.attrs["run_id"] for d in parts]), "path": ("run", files)}
    for name, keys in RUN_COORDS.items():
        coords[name] = ("run", [_get(c, keys) for c in cfgs])
    task_keys = sorted({k for c in cfgs for k, v in c["task"]["params"].items() if np.isscalar(v)})
    for k in task_keys:
        vals = [c["task"]["params"].get(k) for c in cfgs]
        if any(v is None for v in vals):
            continue
        coords[f"task_{k}"] = ("run", vals)
    return coords


def _get(d: dict, keys: tuple[str, ...]):
    for k in keys:
        d = d[k]
    return d
