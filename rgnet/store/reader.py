"""Reading run files into xarray: one run, many runs (lazy, with a ``run`` dim), the whole tree, the tensors.

Opens schema 2 (summaries in the file, tensors in ``<file>.tensors/``) and schema 1 (everything inside).
"""

from __future__ import annotations

import glob as _glob
import json
import warnings
from pathlib import Path
from typing import Iterable

import h5py
import numpy as np
import xarray as xr

from rgnet.errors import DamagedError, DuplicateRunWarning, StoreError
from rgnet.store.schema import LEVEL_KINDS, LEVEL_VARS, STATE_KINDS
from rgnet.store.writer import BRANCHES, check_run_file, plain_attr, tensor_dir, tensor_file

# config fields that become coordinates along ``run`` (select runs by task, seed, model, ...)
RUN_COORDS = {"model": ("model", "name"), "seed": ("seed",), "fraction": ("prune", "fraction"),
              "scope": ("prune", "scope"), "rewind": ("prune", "rewind")}


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


# ------------------------------------------------------------------------------------------ many runs

def open_runs(paths: str | Path | Iterable[str | Path], group: str | None = None) -> xr.Dataset:
    """Open many runs lazily (dask) as one Dataset with a leading ``run`` dim.

    ``paths`` is a glob pattern, a directory (all ``*.h5`` in it), a sweep's ``index.nc`` (its runs with a
    complete level) or a list of files. Runs with fewer levels
    are padded with NaN. Coordinates along ``run``: ``run_id``, ``path``, ``task`` (the task key of
    ``rgnet.verdicts.task_label``), ``model``, ``seed``, ``fraction``, ``scope``, ``rewind``, and every
    scalar task parameter as ``task_<name>``.
    """
    files = _expand(paths)
    parts = [open_run(f, group=group) for f in files]  # small: read whole, concatenated, then handed to dask
    coords = _run_coords(parts, files)
    common = set.intersection(*(set(d.data_vars) for d in parts))  # e.g. hist_outside only in some upgraded files
    parts = [d.drop_vars([c for c in d.coords if d[c].ndim == 0] + [v for v in d.data_vars if v not in common])
             for d in parts]
    ds = xr.concat(parts, dim="run", join="outer", combine_attrs="drop_conflicts",
                   data_vars="all", coords="different", compat="equals")
    return ds.chunk({"run": 64}).assign_coords(coords)


def config_of(ds: xr.Dataset) -> dict:
    """The run config of a Dataset opened by rgnet, as a plain dict."""
    return json.loads(ds.attrs["config"])


def _expand(paths) -> list[str]:
    """Run files from a glob, a directory (its ``*.h5``), a sweep's ``index.nc`` (its recorded runs) or a list
    (of files or indexes)."""
    if isinstance(paths, (str, Path)):
        p = Path(paths)
        if _is_index(p):
            return _index_runs(p)
        files = sorted(_glob.glob(str(p / "*.h5"))) if p.is_dir() else sorted(_glob.glob(str(p)))
    else:
        files = [f for x in paths for f in (_index_runs(Path(x)) if _is_index(Path(x)) else [str(x)])]
    if not files:
        raise StoreError(f"no run files match {paths!r}; pass files, a directory of .h5 files or a glob")
    return unique_runs(files)


def unique_runs(files: list[str]) -> list[str]:
    """``files`` without repeats of a run (same run_id: the same path twice, or a copy), with a warning."""
    first: dict[str, str] = {}
    out = []
    for f in files:
        try:
            with h5py.File(f, "r") as h:
                run_id = plain_attr(h.attrs.get("run_id"))
        except OSError:
            run_id = None  # the reader that opens it says what is wrong
        if run_id is not None and run_id in first:
            warnings.warn(f"{f} holds run {run_id}, already given as {first[run_id]}; it is counted once",
                          DuplicateRunWarning, stacklevel=3)
            continue
        if run_id is not None:
            first[run_id] = f
        out.append(f)
    return out


def _is_index(p: Path) -> bool:
    return p.suffix == ".nc" and p.is_file()   # run files are .h5; netCDF inputs here are sweep indexes


def _index_runs(path: Path) -> list[str]:
    """The runs of a sweep index with at least one complete level."""
    from rgnet.sweep.index import read_index

    cols = read_index(path)
    files = [f for f, n in zip(cols["path"], cols["levels_complete"]) if n > 0]
    if not files:
        raise StoreError(f"the sweep index {str(path)!r} lists no run with a complete level yet; run the sweep "
                         "(rgnet sweep SPEC --dir ...) first")
    return files


def index_labels(paths) -> dict[str, str] | None:
    """For sweep indexes among ``paths``: task key -> run label of the spec, where that is one to one (else None)."""
    items = [paths] if isinstance(paths, (str, Path)) else paths if isinstance(paths, (list, tuple)) else []
    indexes = [Path(x) for x in items if isinstance(x, (str, Path)) and _is_index(Path(x))]
    if not indexes:
        return None
    from rgnet.sweep.index import read_index

    pairs: set[tuple[str, str]] = set()
    for p in indexes:
        cols = read_index(p)
        pairs |= set(zip(cols["task"], cols["label"]))
    tasks, labels = [t for t, _ in pairs], [lb for _, lb in pairs]
    return dict(pairs) if len(set(tasks)) == len(tasks) == len(set(labels)) else None


def _run_coords(parts: list[xr.Dataset], files: list[str]) -> dict[str, tuple]:
    cfgs = [config_of(d) for d in parts]
    coords: dict[str, tuple] = {"run_id": ("run", [d.attrs["run_id"] for d in parts]), "path": ("run", files),
                                "task": ("run", [_task_key(d, c) for d, c in zip(parts, cfgs)])}
    for name, keys in RUN_COORDS.items():
        coords[name] = ("run", [_get(c, keys) for c in cfgs])
    task_keys = sorted({k for c in cfgs for k, v in c["task"]["params"].items() if np.isscalar(v)})
    for k in task_keys:
        vals = [c["task"]["params"].get(k) for c in cfgs]
        if any(v is None for v in vals):
            continue
        coords[f"task_{k}"] = ("run", vals)
    return coords


def _task_key(ds: xr.Dataset, cfg: dict) -> str:
    if "task" in ds.coords and ds["task"].ndim == 0:  # schema 2 stores it
        return str(ds["task"].values)
    from rgnet.verdicts import task_label

    return task_label(cfg)


def _get(d: dict, keys: tuple[str, ...]):
    for k in keys:
        d = d[k]
    return d
