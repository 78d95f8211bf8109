"""Reading run files into xarray: one run, many runs (lazy, with a ``run`` dim), the whole tree, the tensors.

Opens schema 2 (summaries in the file, tensors in ``<file>.tensors/``) and schema 1 (everything inside).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import h5py
import numpy as np
import xarray as xr

from rgnet.errors import DamagedError, StoreError
from rgnet.store.schema import LEVEL_KINDS, LEVEL_VARS, STATE_KINDS
from rgnet.store.writer import BRANCHES, check_current, check_run_file, plain_attr, tensor_dir, tensor_file


# config fields that become coordinates along ``run`` (select runs by task, seed, model, ...)
def _checked(path) -> tuple[Path, dict]:
    p = Path(path)
    if not p.is_file():
        raise StoreError(f"run file {str(p)!r} does not exist; check the path")
    return p, check_run_file(p)


def open_run(path: str | Path, group: str | None = None, chunks=None) -> xr.Dataset:
    """Open one run file (or a branch ``group`` of it) as an ``xr.Dataset`` with named dims.

    Only complete levels are shown (a branch: the levels it has trained). ``ds.attrs["config"]`` is the
    run's canonical JSON — use ``rgnet.config_of(ds)``. The tensors: :func:`open_tensors`. ``chunks``: as
    in ``xr.open_dataset`` (``{}``: dask-backed). The same Dataset as ``xr.open_dataset(path,
    engine="h5netcdf", group=group)`` shows, read directly with h5py (a schema-2 run in a few milliseconds).
    """
    p, attrs = _checked(path)
    ds = None
    if int(attrs["rgnet_schema"]) >= 2:
        with h5py.File(p, "r") as f:
            if group and group not in f:
                raise StoreError(f"{str(p)!r} has no group {group!r}; its branches are "
                                 f"{', '.join(branches(p)) or 'none'}")
            ds = _read_group(f, group)
        if ds is not None:
            ds.encoding["source"] = str(p)
            ds = ds.chunk(chunks) if chunks is not None else ds
    if ds is None:  # schema 1, or variables this reader does not know: let xarray decode the file
        try:
            ds = xr.open_dataset(p, engine="h5netcdf", group=group, chunks=chunks)
        except OSError:
            raise StoreError(f"{str(p)!r} has no group {group!r}; its branches are "
                             f"{', '.join(branches(p)) or 'none'}") from None
    if "level_done" in ds:  # a branch: only the levels it has trained
        return ds.isel(level=np.flatnonzero(ds.level_done.values))
    return ds.isel(level=slice(0, int(attrs["levels_complete"])))


# dims of every variable a schema-2 summary group holds (scalar coordinates have none)
_DIMS = {name: dims for name, (dims, *_) in LEVEL_VARS.items()} | {
    "level": ("level",), "layer": ("layer",), "bin": ("bin",), "bin_bounds": ("bin", "bnd"),
    "quantile": ("quantile",), "iteration": ("eval",), "level_done": ("level",), "hist_outside": ("level", "layer")}
_NETCDF_ONLY = {"DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME", "_Netcdf4Dimid", "_Netcdf4Coordinates",
                "_FillValue", "coordinates", "_NCProperties"}


def _read_group(f: h5py.File, group: str | None) -> xr.Dataset | None:
    """A schema-2 summary group as xarray decodes it, read with h5py (None if it holds an unknown variable).

    The attributes of the schema's per-level variables come from the schema (they are written from it),
    which saves reading ~150 attributes per file.
    """
    g = f[group] if group else f
    variables, coord_names = {}, {"level", "layer", "bin", "quantile", "density", "iteration"}
    for name, obj in g.items():
        if not isinstance(obj, h5py.Dataset) or name in _DIMENSION_ONLY:
            continue
        if name in LEVEL_VARS:
            dims, _, long_name, units = LEVEL_VARS[name]
            if obj.ndim != len(dims):
                return None  # not written by rgnet's writer (e.g. a Dataset saved with to_netcdf)
            variables[name] = xr.Variable(dims, obj[()], {"long_name": long_name, "units": units})
            continue
        if name not in _DIMS and obj.ndim:
            return None
        attrs = {k: plain_attr(obj.attrs[k]) for k in obj.attrs.keys() if k not in _NETCDF_ONLY}  # skip references
        value = obj.asstr()[()] if h5py.check_string_dtype(obj.dtype) else obj[()]
        variables[name] = xr.Variable(_DIMS.get(name, ()), value, attrs)
        if obj.ndim == 0:
            coord_names.add(name)  # run_id, task, seed, task_<param>
    attrs = {k: plain_attr(g.attrs[k]) for k in g.attrs.keys() if k not in _NETCDF_ONLY}
    coords = {k: v for k, v in variables.items() if k in coord_names}
    return xr.Dataset({k: v for k, v in variables.items() if k not in coord_names}, coords=coords, attrs=attrs)


_DIMENSION_ONLY = {"bnd", "atom", "eval"}  # netCDF dimensions without a coordinate variable


def shown_levels(f: h5py.File, group: str | None = None) -> np.ndarray:
    """Indices of the levels readers show: complete levels (trunk) or trained levels (branch)."""
    g = f[group] if group else f
    if "level_done" in g:
        return np.flatnonzero(g["level_done"][...])
    return np.arange(int(plain_attr(f.attrs["levels_complete"])))


def read_levels(path: str | Path, variables: Iterable[str], group: str | None = None) -> tuple[np.ndarray, dict, dict]:
    """Fast path for tables: ``(levels, {name: values}, attrs)`` of a few per-level variables, read with h5py.

    Only complete levels (trunk) or trained levels (branch) are returned, as :func:`open_run` shows them.
    Variables the file does not have (written by an older schema) are left out of ``values``.
    """
    p, _ = _checked(path)
    with h5py.File(p, "r") as f:
        g = f[group] if group else f
        attrs = {k: plain_attr(v) for k, v in g.attrs.items()}
        idx = shown_levels(f, group)
        values = {name: np.asarray(g[name][...])[idx] for name in variables if name in g}  # absent: older schema
        return np.asarray(g["level"][...])[idx], values, attrs


def branches(path: str | Path) -> list[str]:
    """Group paths of the branches in a run file (``branches/reinit``, ``branches/transfer_<id>`` ...)."""
    with h5py.File(path, "r") as f:
        return [f"{BRANCHES}/{name}" for name in sorted(f[BRANCHES])] if BRANCHES in f else []


# ------------------------------------------------------------------------------------------ tensors

def _kind_check(kind: str) -> None:
    if kind not in LEVEL_KINDS + STATE_KINDS:
        raise StoreError(f"unknown tensor kind {kind!r}; valid kinds are {', '.join(LEVEL_KINDS + STATE_KINDS)}")


def _tensor_source(path: Path, attrs: dict, kind: str, level: int | None, group: str | None) -> tuple[Path, str]:
    """(file, group inside it) holding ``kind`` (of ``level``) of a schema-2 run; checked to belong to the run."""
    where = "init" if kind == "init" or (kind == "rewind" and not group) else level if kind in LEVEL_KINDS else kind
    f = tensor_file(path, where, group)
    if not f.is_file():
        folder = tensor_dir(path)
        if not folder.is_dir():
            raise StoreError(f"the tensors of {str(path)!r} are missing: {str(folder)!r} does not exist; copy that "
                             "folder together with the run file")
        raise StoreError(f"{str(path)!r} has no {kind} tensors{'' if level is None else f' at level {level}'}"
                         f"{f' in {group}' if group else ''} ({str(f)!r} does not exist; a branch recorded "
                         "without tensors keeps none)")
    with h5py.File(f, "r") as h:
        owner, held_group, held_level = (plain_attr(h.attrs.get(k)) for k in ("run_id", "group", "level"))
        if kind not in h:
            raise DamagedError(f"{str(f)!r} holds no {kind} tensors; the tensor folder is damaged — "
                               f"`rgnet info --check {path}` lists what is")
    if owner != attrs["run_id"]:
        raise DamagedError(f"{str(f)!r} belongs to run {owner}, not to {attrs['run_id']} of {str(path)!r}; "
                           "keep each run's tensor folder with its own file")
    if str(held_group or "/").strip("/") != (group or "").strip("/") or (
            kind in LEVEL_KINDS and (held_level is None or int(held_level) != level)):
        raise DamagedError(f"{str(f)!r} holds the tensors of {held_group or '/'} level {held_level}, not of "
                           f"{group or '/'} level {level}; the tensor folder is damaged — "
                           f"`rgnet info --check {path}` lists what is")
    return f, kind


def read_tensors(path: str | Path, kind: str, level: int | None = None,
                 group: str | None = None) -> dict[str, np.ndarray]:
    """One state dict or set of masks as numpy arrays, keyed by parameter (or layer) name.

    ``kind``: ``init``, ``rewind`` (state dicts), or per level (``level`` required) ``mask``, ``next_mask``,
    ``trained``. Reads schema 1 and 2.
    """
    _kind_check(kind)
    p, attrs = _checked(path)
    if (kind in LEVEL_KINDS) != (level is not None):
        raise StoreError(f"tensor kind {kind!r} {'needs' if kind in LEVEL_KINDS else 'takes no'} level")
    if int(attrs["rgnet_schema"]) < 2:
        with h5py.File(p, "r") as f:
            g = f[f"{group}/tensors/{kind}" if group else f"tensors/{kind}"]
            return {n: np.asarray(v[level] if level is not None else v[...]) for n, v in g.items()
                    if isinstance(v, h5py.Dataset) and n != "level" and not _is_scale(v)}
    f, sub = _tensor_source(p, attrs, kind, level, group)
    with h5py.File(f, "r") as h:
        return {plain_attr(v.attrs["parameter"]): np.asarray(v[...]) for v in h[sub].values()
                if isinstance(v, h5py.Dataset) and "parameter" in v.attrs}


def _is_scale(v: h5py.Dataset) -> bool:
    return plain_attr(v.attrs.get("CLASS", b"")) == "DIMENSION_SCALE"


def open_tensors(path: str | Path, kind: str = "trained", group: str | None = None) -> xr.Dataset:
    """Tensors of a run as a lazy ``xr.Dataset``: one variable per parameter (``fc1.weight``) or layer (masks).

    Per-level kinds (``trained``, ``mask``, ``next_mask``) have a leading ``level`` dim over the complete
    (branch: trained) levels; ``init`` and ``rewind`` have none. ``rg.microscopic`` takes
    ``open_tensors(path)`` directly.
    """
    _kind_check(kind)
    p, attrs = _checked(path)
    with h5py.File(p, "r") as f:
        levels = shown_levels(f, group)
    if int(attrs["rgnet_schema"]) < 2:
        sub = f"{group}/tensors/{kind}" if group else f"tensors/{kind}"
        ds = xr.open_dataset(p, engine="h5netcdf", group=sub, chunks={})
        return ds.isel(level=levels) if kind in LEVEL_KINDS else ds
    if kind not in LEVEL_KINDS:
        return _named(xr.open_dataset(_tensor_source(p, attrs, kind, None, group)[0], engine="h5netcdf",
                                      group=kind, chunks={}))
    parts = [_named(xr.open_dataset(_tensor_source(p, attrs, kind, int(lv), group)[0], engine="h5netcdf",
                                    group=kind, chunks={})) for lv in levels]
    if not parts:
        raise StoreError(f"{str(p)!r} has no complete level{f' in {group}' if group else ''} yet")
    return xr.concat(parts, dim="level", data_vars="all", coords="different", compat="equals")


def _named(ds: xr.Dataset) -> xr.Dataset:
    """Variables renamed to the parameter names they hold (``fc1_weight`` -> ``fc1.weight``)."""
    return ds.rename({v: ds[v].attrs["parameter"] for v in ds.data_vars if "parameter" in ds[v].attrs})


def open_tree(path: str | Path) -> xr.DataTree:
    """The whole run as an ``xr.DataTree``: summaries of trunk and branches, and ``tensors/<kind>`` groups.

    Levels are the complete ones (as :func:`open_run`); branch levels not trained are NaN.
    """
    p, attrs = _checked(path)
    if int(attrs["rgnet_schema"]) < 2:
        return xr.open_datatree(p, engine="h5netcdf")
    n = int(attrs["levels_complete"])
    nodes: dict[str, xr.Dataset] = {"/": open_run(p)}
    for group in [None, *branches(p)]:
        base = f"/{group}" if group else ""
        if group:  # every level of the trunk, level_done saying which the branch trained
            with h5py.File(p, "r") as f:
                ds = _read_group(f, group)
            nodes[base] = (ds if ds is not None else xr.open_dataset(p, engine="h5netcdf", group=group)).isel(
                level=slice(0, n))
        folder = tensor_dir(p, group)
        if not folder.is_dir() or n == 0:
            continue
        for kind in (("init", "rewind") if not group else ("rewind",)) + LEVEL_KINDS:
            try:
                ds = open_tensors(p, kind, group)
            except StoreError:
                continue  # a kind this group does not keep (next_mask in branches, trained without tensors)
            nodes[f"{base}/tensors/{kind}"] = ds.reindex(level=np.arange(n)) if "level" in ds.dims else ds
    return xr.DataTree.from_dict(nodes)


def config_of(ds: xr.Dataset) -> dict:
    """The run config of a Dataset opened by rgnet, as a plain dict."""
    return json.loads(ds.attrs["config"])


def run_progress(path: str | Path, current: bool = False) -> dict:
    """How far a run file is: complete trunk ``levels``, the last one's ``density``, ``diverged`` and
    ``diverged_iteration``, and each branch's ``level_done`` (``groups``). ``current``: refuse an old schema."""
    with h5py.File(path, "r") as f:
        if current:
            check_current(Path(path), f.attrs)
        n = int(plain_attr(f.attrs["levels_complete"]))
        diverged = bool(n and f["diverged"][n - 1] == 1)
        groups = {name: np.asarray(g["level_done"][...]).astype(bool) for name, g in f[BRANCHES].items()} \
            if BRANCHES in f else {}
        return {"levels": n, "density": float(f["density"][n - 1]) if n else None, "diverged": diverged,
                "diverged_iteration": int(f["diverged_iteration"][n - 1]) if diverged else -1, "groups": groups}


def read_resume_state(path: Path) -> dict:
    """What continuing a run needs: :func:`run_progress` plus the rewind point and the next masks."""
    state = run_progress(path, current=True)
    n = state["levels"]
    if n:
        state.update(rewind=read_tensors(path, "rewind"), next_mask=read_tensors(path, "next_mask", n - 1))
    return state
