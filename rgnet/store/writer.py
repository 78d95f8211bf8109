"""Writing run files: create the layout, append one level atomically, read back what resuming needs.

Atomicity: each commit copies the file, appends the level to the copy, fsyncs it and renames it over the
original. The file at ``path`` is therefore always a complete, valid file holding whole levels only —
a kill at any moment loses at most the level in progress.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Iterator

import h5netcdf
import h5py
import numpy as np

from rgnet.errors import StoreError
from rgnet.imp.theory import QUANTILES, bin_edges
from rgnet.store.schema import LEVEL_VARS, SCHEMA_VERSION

BRANCHES = "branches"
LEVEL_CHUNK = 16  # levels per HDF5 chunk of per-level variables (the default, 1024, costs 8 kB per variable)
_COMPRESS = {"compression": "gzip", "compression_opts": 1}


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold ``<path>.lock`` so that two processes never record into the same file at once."""
    import fcntl

    lock = path.with_name(path.name + ".lock")
    with open(lock, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(f"another process is recording into {str(path)!r}; wait for it to finish or "
                             "pass another --out") from None
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()


@contextlib.contextmanager
def atomic_update(path: Path, create: bool = False) -> Iterator[h5netcdf.File]:
    """Open a copy of ``path`` (or a new file), yield it, then fsync and rename it over ``path``."""
    tmp = path.with_name(path.name + ".partial")
    try:
        if not create:
            shutil.copyfile(path, tmp)
        with h5netcdf.File(tmp, "w" if create else "a", libver="latest") as f:
            yield f
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        with contextlib.suppress(OSError):
            dfd = os.open(path.parent, os.O_RDONLY)
            os.fsync(dfd)
            os.close(dfd)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def create_layout(g, *, layers: list[str], iterations: np.ndarray, bins: int, state: dict[str, np.ndarray],
                  masks: dict[str, tuple[int, ...]], tensors: bool, branch: bool = False) -> None:
    """Dimensions, coordinates and empty per-level variables of a run (root or branch group).

    A branch keeps only its starting weights (``tensors/rewind``) and masks (it has no IMP initialisation
    of its own and no next level to prune for), and with ``tensors=False`` no tensors at all.
    """
    g.dimensions = {"level": None, "layer": len(layers), "bin": bins, "bnd": 2,
                    "quantile": len(QUANTILES), "eval": len(iterations)}
    _var(g, "level", ("level",), "i8", chunks=(LEVEL_CHUNK,), long_name="IMP level (0 = dense)")
    _var(g, "layer", ("layer",), h5py.string_dtype(), np.array(layers, dtype=object),
         long_name="prunable layer")
    edges = bin_edges(bins)
    _var(g, "bin", ("bin",), "f8", (edges[1:] + edges[:-1]) / 2, long_name="bin centre / bin_scale",
         units="1", bounds="bin_bounds")
    _var(g, "bin_bounds", ("bin", "bnd"), "f8", np.stack([edges[:-1], edges[1:]], 1))
    _var(g, "quantile", ("quantile",), "f8", QUANTILES, long_name="quantile level")
    _var(g, "iteration", ("eval",), "i8", iterations, long_name="training iteration", units="iteration")
    _var(g, "bin_scale", ("layer",), "f8", long_name="weight value at bin coordinate 1 (grid of level 0)")
    sizes = {d: (LEVEL_CHUNK if dim.isunlimited() else dim.size) for d, dim in g.dimensions.items()}
    for name, (dims, dtype, long_name, units) in LEVEL_VARS.items():
        v = g.create_variable(name, dims, dtype=dtype, fillvalue=(np.nan if dtype == "f8" else None),
                              chunks=tuple(sizes[d] for d in dims), **(_COMPRESS if len(dims) > 1 else {}))
        v.attrs.update(long_name=long_name, units=units)
        if name != "density":  # CF: makes density (and iteration) coordinates in plain xarray
            v.attrs["coordinates"] = "density iteration" if "eval" in dims else "density"
    if branch and not tensors:
        return  # a branch's tensors are all derivable (trunk masks, seeded random masks, the source's ticket)
    t = g.create_group("tensors")
    params = {k: (a.shape, a.dtype) for k, a in state.items()}
    bits = {k: (s, np.uint8) for k, s in masks.items()}
    groups = [("init", params, False), ("rewind", params, False), ("next_mask", bits, False), ("mask", bits, True),
              ("trained", params if tensors else {}, True)]
    for sub, shapes, per_level in groups:
        if branch and sub in ("init", "next_mask"):
            continue
        s = t.create_group(sub)
        if per_level:
            s.dimensions["level"] = None
        for name, (shape, dt) in shapes.items():
            dims = tensor_dims(s, name, shape)
            s.create_variable(name, (("level",) if per_level else ()) + dims, dtype=dt,
                              chunks=((1,) + tuple(shape)) if per_level and shape else None,
                              **(_COMPRESS if shape else {}))


def tensor_dims(g, name: str, shape: tuple[int, ...]) -> tuple[str, ...]:
    """Create (in group ``g``) and return the dimensions ``<name>.d0, <name>.d1, ...`` of one tensor."""
    dims = tuple(f"{name}.d{i}" for i in range(len(shape)))
    for d, n in zip(dims, shape):
        g.dimensions[d] = n
    return dims


def append_level(g, level: int, record: dict) -> None:
    """Write one level (``record`` as built by the IMP driver) into group ``g``.

    ``level`` is either the next one (the group grows by one) or, in a branch group that already spans the
    trunk's level axis, any existing index.
    """
    size = g.dimensions["level"].size
    if level > size:
        raise StoreError(f"cannot write level {level}: the group holds {size} levels")
    if level == size:
        _grow(g, level + 1)
    for name in LEVEL_VARS:
        if name in g.variables:  # files of schema 1 lack the divergence flags
            g[name][level] = record[name]
    if "bin_scale" in record:
        g["bin_scale"][:] = record["bin_scale"]
    if "tensors" not in g.groups:
        return
    t = g["tensors"]
    for sub in ("mask", "trained"):
        for name in t[sub].variables:
            t[sub][name][level] = record[sub][name]
    for sub in ("init", "rewind", "next_mask"):
        for name, value in (record.get(sub, {}) if sub in t.groups else {}).items():
            t[sub][name][...] = value


def _grow(g, n: int) -> None:
    """Extend the ``level`` axis of a run group (and its per-level tensors) to ``n`` levels."""
    old = g.dimensions["level"].size
    g.resize_dimension("level", n)
    g["level"][old:n] = np.arange(old, n)
    for sub in ("mask", "trained") if "tensors" in g.groups else ():
        g["tensors"][sub].resize_dimension("level", n)


def branch_names(f) -> list[str]:
    return sorted(f[BRANCHES].groups) if BRANCHES in f.groups else []


def sync_branches(f) -> None:
    """Keep every branch on the trunk's level axis (DataTree needs equal ``level`` dims in all groups).

    Levels a branch has not trained stay NaN (integers 0) with ``level_done = 0``.
    """
    n = f.dimensions["level"].size
    for name in branch_names(f):
        g = f[BRANCHES][name]
        if g.dimensions["level"].size < n:
            _grow(g, n)


def create_branch(f, name: str, attrs: dict, **layout) -> None:
    """A ``branches/<name>`` group with the run layout (see :func:`create_layout`) on the trunk's levels."""
    g = f.create_group(f"{BRANCHES}/{name}")
    g.attrs.update(attrs)
    create_layout(g, **layout, branch=True)
    v = g.create_variable("level_done", ("level",), dtype="u1", chunks=(LEVEL_CHUNK,))
    v.attrs.update(long_name="1 where this branch has trained the level", units="1")
    sync_branches(f)


def read_group(g) -> dict[str, np.ndarray]:
    """All variables of a flat group as numpy arrays (state dicts, masks)."""
    return {name: np.asarray(v[...]) for name, v in g.variables.items()}


def read_resume_state(path: Path, group: str = "/") -> dict:
    """What continuing a run needs: rewind point, next masks, histogram scales, last density."""
    with h5netcdf.File(path, "r") as f:
        g = f if group.strip("/") == "" else f[group]
        n = g.dimensions["level"].size
        diverged = bool(n and "diverged" in g.variables and g["diverged"][n - 1])
        return {"rewind": read_group(g["tensors/rewind"]), "next_mask": read_group(g["tensors/next_mask"]),
                "bin_scale": np.asarray(g["bin_scale"][...]), "levels": n,
                "density": float(g["density"][n - 1]) if n else None, "diverged": diverged,
                "diverged_iteration": int(g["diverged_iteration"][n - 1]) if diverged else -1}


def root_attrs(run_id: str, config_json: str, task_summary: dict, versions: dict) -> dict:
    return {"rgnet_schema": SCHEMA_VERSION, "run_id": run_id, "config": config_json,
            "task": json.dumps(task_summary, sort_keys=True), "versions": json.dumps(versions, sort_keys=True),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "levels_complete": 0,
            "Conventions": "CF-1.8", "title": f"rgnet IMP run {run_id}"}


def _var(g, name, dims, dtype, data=None, chunks=None, **attrs):
    v = g.create_variable(name, dims, dtype=dtype, data=data, chunks=chunks)
    v.attrs.update(attrs)
    return v


def check_run_file(path: Path) -> dict:
    """Root attributes of an rgnet file; :class:`StoreError` if it is not one or cannot be read."""
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: plain_attr(v) for k, v in f.attrs.items()}
    except OSError:
        raise StoreError(f"{str(path)!r} is not a readable HDF5 file (corrupt or another format); "
                         "rgnet left it untouched") from None
    if "rgnet_schema" not in attrs:
        raise StoreError(f"{str(path)!r} is an HDF5 file but not an rgnet run file; rgnet left it untouched")
    if int(attrs["rgnet_schema"]) > SCHEMA_VERSION:
        raise StoreError(f"{str(path)!r} uses rgnet schema {attrs['rgnet_schema']}, newer than this rgnet "
                         f"({SCHEMA_VERSION}); upgrade rgnet to read it")
    _check_metadata(path, attrs)
    return attrs


def _check_metadata(path: Path, attrs: dict) -> None:
    """:class:`StoreError` if the root attributes every reader relies on are missing or unreadable."""
    def readable(key: str) -> bool:
        try:
            if key == "run_id":
                return isinstance(attrs[key], str)
            if key == "levels_complete":
                return int(attrs[key]) >= 0
            value = json.loads(attrs[key])
            return isinstance(value, dict) and (key != "config" or "prune" in value and "task" in value)
        except (KeyError, TypeError, ValueError):
            return False

    # task (the data summary) only matters to training, which checks it
    keys = ["run_id", "config", "levels_complete"] + (["task"] if "task" in attrs else [])
    bad = [k for k in keys if not readable(k)]
    if bad:
        raise StoreError(f"{str(path)!r} is an rgnet file with damaged metadata (attribute {bad[0]!r} missing or "
                         "unreadable); rgnet left it untouched — restore it from a copy or record the run again")


def plain_attr(v):
    """An HDF5 attribute as a plain Python value (bytes decoded, one-element arrays unpacked)."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, (np.generic, np.ndarray)) and np.size(v) == 1:
        return np.asarray(v).item()
    return v
