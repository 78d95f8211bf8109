"""The catalog of many runs: globs, folders, lists and sweep indexes resolved to run files (each run once),
their task labels, and ``open_runs`` over them. Everything that reads more than one run starts here."""

from __future__ import annotations

import glob as _glob
import warnings
from pathlib import Path
from typing import Iterable

import h5py
import numpy as np
import xarray as xr

from rgnet.errors import DuplicateRunWarning, StoreError
from rgnet.store.reader import config_of, open_run
from rgnet.store.writer import plain_attr
from rgnet.tasks import TASKS, task_label

INDEX_ATTR = "rgnet_sweep_index"   # root attribute that marks a sweep index (its format version)
RUN_COORDS = {"model": ("model", "name"), "seed": ("seed",), "fraction": ("prune", "fraction"),
              "scope": ("prune", "scope"), "rewind": ("prune", "rewind")}


def open_runs(paths: str | Path | Iterable[str | Path], group: str | None = None,
              labels: dict[str, str] | None = None) -> xr.Dataset:
    """Open many runs lazily (dask) as one Dataset with a leading ``run`` dim.

    ``paths`` is a glob pattern, a directory (all ``*.h5`` in it), a sweep's ``index.nc`` (its runs with a
    complete level) or a list of files. Runs with fewer levels
    are padded with NaN. Coordinates along ``run``: ``run_id``, ``path``, ``task`` (the task key of
    ``rgnet.tasks.task_label``, renamed through ``labels``, e.g. ``rgnet.task_labels(spec)``; a sweep index
    names its tasks by the spec's labels), ``model``, ``seed``, ``fraction``, ``scope``, ``rewind``, and every
    scalar parameter of the runs' tasks as ``task_<name>``: the task's default where a run leaves it out, NaN
    (or "") where a run's task has no such parameter.
    """
    files = expand(paths)
    parts = [open_run(f, group=group) for f in files]  # small: read whole, concatenated, then handed to dask
    labels = labels if labels is not None else index_labels(paths)
    coords = _run_coords(parts, files, labels)
    common = set.intersection(*(set(d.data_vars) for d in parts))  # e.g. hist_outside only in some upgraded files
    parts = [d.drop_vars([c for c in d.coords if d[c].ndim == 0] + [v for v in d.data_vars if v not in common])
             for d in parts]
    ds = xr.concat(parts, dim="run", join="outer", combine_attrs="drop_conflicts",
                   data_vars="all", coords="different", compat="equals")
    return ds.chunk({"run": 64}).assign_coords(coords)


def expand(paths) -> list[str]:
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
    pairs: set[tuple[str, str]] = set()
    for p in indexes:
        cols = read_index(p)
        pairs |= set(zip(cols["task"], cols["label"]))
    tasks, labels = [t for t, _ in pairs], [lb for _, lb in pairs]
    return dict(pairs) if len(set(tasks)) == len(tasks) == len(set(labels)) else None


def _run_coords(parts: list[xr.Dataset], files: list[str], labels: dict[str, str] | None) -> dict[str, tuple]:
    cfgs = [config_of(d) for d in parts]
    coords: dict[str, tuple] = {"run_id": ("run", [d.attrs["run_id"] for d in parts]), "path": ("run", files),
                                "task": ("run", [_task_key(d, c, labels) for d, c in zip(parts, cfgs)])}
    for name, keys in RUN_COORDS.items():
        coords[name] = ("run", [_get(c, keys) for c in cfgs])
    params = [task_parameters(c["task"]["name"], c["task"]["params"]) for c in cfgs]
    for k in sorted({k for p in params for k in p}):
        coords[f"task_{k}"] = ("run", _column([p.get(k) for p in params]))
    return coords


def task_parameters(name: str, params: dict) -> dict:
    """The scalar parameters of a run's task: those it stores, and the task's defaults for those it leaves out
    (a parameter added to a task later; its default reproduces the task as it was)."""
    defaults = TASKS[name].defaults if name in TASKS else {}
    return {k: v for k, v in {**defaults, **params}.items() if np.isscalar(v)}


def _column(values: list):
    """One coordinate from per-run values; a run whose task lacks the parameter gets NaN ("" for text)."""
    if all(v is not None for v in values):
        return values
    if any(isinstance(v, str) for v in values):
        return ["" if v is None else str(v) for v in values]
    return [np.nan if v is None else float(v) for v in values]


def as_run(ds: xr.Dataset) -> xr.Dataset:
    """One run file's Dataset as one member of a ``run`` dim, every parameter of every registered task a
    coordinate along it (see :func:`open_runs`): ``xr.open_mfdataset(files, preprocess=rgnet.as_run,
    combine="nested", concat_dim="run", join="outer", engine="h5netcdf")`` then opens a mixed family."""
    cfg = config_of(ds)
    own = task_parameters(cfg["task"]["name"], cfg["task"]["params"])
    every = {k: v for t in TASKS.values() for k, v in t.defaults.items() if np.isscalar(v)}
    scalar = [c for c in ds.coords if ds[c].ndim == 0 and not c.startswith("task_")]
    values = {c: ds[c].values.item() for c in scalar}
    values |= {f"task_{k}": own.get(k, "" if isinstance(v, str) else np.nan) for k, v in sorted(every.items())}
    return ds.drop_vars([c for c in ds.coords if ds[c].ndim == 0]).expand_dims("run").assign_coords(
        {c: ("run", [v]) for c, v in values.items()})


def _task_key(ds: xr.Dataset, cfg: dict, labels: dict[str, str] | None) -> str:
    key = str(ds["task"].values) if "task" in ds.coords and ds["task"].ndim == 0 else task_label(cfg)  # schema 2
    return (labels or {}).get(key, key)


def _get(d: dict, keys: tuple[str, ...]):
    for k in keys:
        d = d[k]
    return d


def read_index(path: str | Path) -> dict[str, list]:
    """The run table of a sweep index as lists: ``path`` (absolute), ``label``, ``task``, ``levels_complete``..."""
    p = Path(path)
    with h5py.File(p, "r") as f:
        if INDEX_ATTR not in f.attrs:
            raise StoreError(f"{str(p)!r} is not an rgnet sweep index")
        cols = {k: [x.decode() if isinstance(x, bytes) else x for x in f[k][...].tolist()]
                for k in ("path", "label", "task", "status", "levels_complete")}
    cols["path"] = [str(p.parent / x) for x in cols["path"]]
    return cols
