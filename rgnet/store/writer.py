"""Writing run files: create the layout, commit one level, read back what resuming needs.

Crash safety without copying what earlier levels wrote: a level's tensors go to their own file in the
run's tensor folder, then the small summary file is read into memory, the level's summaries and
``levels_complete`` are written into that copy, and it replaces the original (both through
:mod:`rgnet.store.atomic`: temporary name, fsync, rename). The summary file is therefore always complete
and valid; a kill at any moment loses at most the level in progress (its tensor file, if already renamed,
belongs to no complete level and is overwritten when the level is trained again). The copy costs the size
of the summaries (fixed at creation: the level dim has its planned size), independent of how many levels
are written.

Files are bounded to the HDF5 1.10 format (``LIBVER``) so that HDF5 >= 1.10 and netCDF-C >= 4.7 read them,
and every per-level variable carries a fletcher32 checksum (``rgnet info --check`` verifies them).
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Iterator

import h5netcdf
import h5py
import numpy as np

from rgnet.errors import StoreError
from rgnet.store.atomic import replacing
from rgnet.store.provenance import PROVENANCE_ATTR, history_line, note_machine
from rgnet.store.schema import LEVEL_VARS, SCHEMA_VERSION
from rgnet.theory import QF_SIZE, QUANTILES, bin_edges

BRANCHES = "branches"
LIBVER = ("v110", "v110")   # HDF5 1.10 file format: small (new chunk indexes), readable by HDF5 >= 1.10
TENSORS_SUFFIX = ".tensors"
LOCK_SUFFIX = ".lock"
TENSORS_SCHEMA = 1
_PACK = {"compression": "gzip", "compression_opts": 1, "shuffle": True, "fletcher32": True}
_PLAIN = {"fletcher32": True}
# summary files are rewritten level by level: track free space in the file, so that a rewritten chunk reuses
# the space of the one it replaces instead of growing the file
_SPACE = {"fs_strategy": "fsm", "fs_persist": True}


# ------------------------------------------------------------------------------------------ locking

#: seconds :func:`exclusive` waits for a lock held by another process (0: fail at once); see :func:`lock_wait`
_LOCK_WAIT: contextvars.ContextVar[float] = contextvars.ContextVar("rgnet_lock_wait", default=0.0)


@contextlib.contextmanager
def lock_wait(seconds: float) -> Iterator[None]:
    """Inside this block, :func:`exclusive` waits up to ``seconds`` for a run file held by another process
    instead of failing at once (a sweep's units wait for a duplicate of themselves; ``rgnet record`` does not)."""
    token = _LOCK_WAIT.set(float(seconds))
    try:
        yield
    finally:
        _LOCK_WAIT.reset(token)


@contextlib.contextmanager
def exclusive(path: Path, wait: float | None = None) -> Iterator[None]:
    """Hold ``<path>.lock`` so that two processes never record into the same file at once.

    A lock held by another process raises :class:`StoreError` at once, or after waiting up to ``wait``
    seconds for it (default: the value set by :func:`lock_wait`, else 0). The lock is an ``flock`` on the
    open file, so a holder that dies (killed, crashed) releases it with its last file descriptor: a stale lock
    file left behind by a dead process is simply locked again. The holder writes its pid and host into the
    file, for the message others see.

    The lock file is removed while still locked; a process that opened it just before (and so locks a file
    that no longer has a name) notices that the name now points elsewhere and tries again, so two writers
    can never both hold the lock.
    """
    lock = path.with_name(path.name + LOCK_SUFFIX)
    wait = _LOCK_WAIT.get() if wait is None else wait
    deadline, pause = time.monotonic() + wait, 0.05
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if lock_fd(fd, lock):
                break
        except StoreError:
            if time.monotonic() >= deadline:
                raise StoreError(_busy_message(path, lock, wait)) from None
            time.sleep(pause)
            pause = min(2 * pause, 1.0)
    with contextlib.suppress(OSError):  # only informative
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)


def _busy_message(path: Path, lock: Path, waited: float) -> str:
    try:
        holder = lock.read_text().strip()
    except OSError:
        holder = ""
    who = f" ({holder})" if holder else ""
    if waited > 0:
        return (f"another process is recording into {str(path)!r}{who} and did not finish within {waited:g} s; "
                "wait for it to finish, or allow a longer wait")
    return f"another process is recording into {str(path)!r}{who}; wait for it to finish or pass another --out"


def lock_fd(fd: int, lock: Path) -> bool:
    """Lock the open file ``fd`` of ``lock``: True if it is still the file named ``lock`` (else it is closed).

    :class:`StoreError` (``fd`` closed) if another process holds the lock.
    """

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        path = lock.with_name(lock.name[: -len(LOCK_SUFFIX)])
        raise StoreError(_busy_message(path, lock, 0)) from None
    try:
        named = os.stat(lock)
    except FileNotFoundError:
        named = None
    mine = os.fstat(fd)
    if named is not None and (named.st_ino, named.st_dev) == (mine.st_ino, mine.st_dev):
        return True
    os.close(fd)  # the previous holder removed this file after we opened it: lock the current one instead
    return False


# ------------------------------------------------------------------------------------------ atomic files

@contextlib.contextmanager
def atomic_update(path: Path, create: bool = False) -> Iterator[h5netcdf.File]:
    """Open a copy of ``path`` (or a new file) with h5netcdf, yield it, then fsync and rename it over ``path``.

    An existing run file of an older schema is refused (``rgnet upgrade`` converts it first).
    """
    with replacing(path, copy=not create) as buf:
        with h5netcdf.File(buf, "w" if create else "a", libver=LIBVER, **(_SPACE if create else {})) as f:
            if not create:
                check_current(path, f.attrs)
            yield f


def check_current(path: Path, attrs) -> None:
    """:class:`StoreError` unless the file has the current schema (older files are read, not extended)."""
    if "rgnet_schema" in attrs and int(plain_attr(attrs["rgnet_schema"])) < SCHEMA_VERSION:
        raise StoreError(f"{str(path)!r} uses rgnet schema {plain_attr(attrs['rgnet_schema'])}; run "
                         f"`rgnet upgrade {path}` to convert it to schema {SCHEMA_VERSION} before adding to it")


def tensor_dir(path: str | Path, group: str | None = None) -> Path:
    """The folder holding the tensor files of run file ``path`` (of its branch ``group``)."""
    p = Path(path)
    d = p.with_name(p.name + TENSORS_SUFFIX)
    return d / group.strip("/") if group and group.strip("/") else d


def tensor_file(path: str | Path, kind: str | int, group: str | None = None) -> Path:
    """``init.nc``, ``rewind.nc`` (a branch's starting weights) or ``level_NNN.nc`` for level ``kind``."""
    name = f"level_{kind:03d}.nc" if isinstance(kind, (int, np.integer)) else f"{kind}.nc"
    return tensor_dir(path, group) / name


def var_name(parameter: str) -> str:
    """A tensor's variable name in a file: the parameter name without dots (``fc1.weight`` -> ``fc1_weight``)."""
    return parameter.replace(".", "_")


def write_tensor_file(out: Path, attrs: dict, groups: dict[str, dict[str, np.ndarray]],
                      level: int | None = None, history: str | None = None) -> None:
    """Write ``groups`` (group -> parameter -> array) as one netCDF file, atomically (temp, fsync, rename).

    ``history``: its CF history line (default: this rgnet wrote it, on an unnamed machine)."""
    what = f"level {level}" if level is not None else "weights"
    weighted = weighted_layers(groups)
    with replacing(out, copy=False) as buf:
        with h5netcdf.File(buf, "w", libver=LIBVER) as f:
            f.attrs.update({"rgnet_tensors": TENSORS_SCHEMA, **attrs, "Conventions": "CF-1.8",
                            "title": f"rgnet tensors of run {attrs.get('run_id')}" +
                                     (f", level {level}" if level is not None else ""),
                            "history": history or history_line(what), "comment": DIMS_COMMENT})
            for sub, arrays in groups.items():
                g = f.create_group(sub)
                if level is not None:
                    lv = g.create_variable("level", (), dtype="i4", data=np.int32(level))
                    lv.attrs.update(long_name="IMP level (0 = dense)", units="1")
                for name, a in arrays.items():
                    a = np.asarray(a)
                    v = g.create_variable(var_name(name), layer_dims(f, sub, name, a.shape, weighted), data=a,
                                          chunks=a.shape if a.shape else None,
                                          **((_PACK if _compressible(a) else _PLAIN) if a.shape else {}))
                    v.attrs.update(parameter=name, units="1", long_name=f"{sub} {name}")
                    if level is not None:
                        v.attrs["coordinates"] = "level"


def _compressible(a: np.ndarray) -> bool:
    """Masks always; weights once mostly pruned (gzip gains little on dense floats and costs ~20 ns a byte)."""
    return a.nbytes > 4096 and (a.dtype.kind in "ub" or np.count_nonzero(a) < a.size // 2)


MASK_KINDS = ("mask", "next_mask")   # tensor groups keyed by layer; the others hold state dicts (by parameter)
_KERNEL_AXES = {1: ("kernel",), 2: ("kernel_h", "kernel_w"), 3: ("kernel_d", "kernel_h", "kernel_w")}
DIMS_COMMENT = ("dimensions <layer>_out and <layer>_in: the output and input units (rows and columns; a convolution's "
                "channels) of the layer's weight, shared by its bias and masks; <layer>_kernel*: the kernel's axes; "
                "<layer>_channel: per-channel parameters of a layer without a weight matrix (norms)")


def layer_of(kind: str, name: str) -> str:
    """The layer a tensor belongs to: a mask's own name, a parameter's module (``fc1.weight`` -> ``fc1``)."""
    return name if kind in MASK_KINDS else name.rpartition(".")[0] or name


def weighted_layers(groups: dict[str, dict[str, np.ndarray]]) -> set[str]:
    """Layers with a weight of 2 or more dims among ``groups`` (kind -> name -> array): their 1-d tensors (biases)
    run along the weight's output units."""
    return {layer_of(kind, name) for kind, arrays in groups.items() for name, a in arrays.items() if np.ndim(a) >= 2}


def layer_dims(f, kind: str, name: str, shape: tuple[int, ...], weighted: set[str]) -> tuple[str, ...]:
    """Named dimensions of one tensor, created in the root group ``f`` if new: ``<layer>_out, <layer>_in`` and
    ``<layer>_kernel*`` for a weight or mask, ``<layer>_out`` for the bias of a weighted layer, ``<layer>_channel``
    otherwise; so a layer's weight, bias and masks share theirs in every group (``ncdump -h`` and xarray show
    them). A name taken with another size falls back to ``<variable>_<axis>``, then ``<variable>_d<i>_<size>``."""
    n = len(shape)
    layer, own = var_name(layer_of(kind, name)), var_name(name)
    axes = (("out",) if layer_of(kind, name) in weighted else ("channel",)) if n == 1 else \
        ("out", "in", *_KERNEL_AXES.get(n - 2, tuple(f"kernel{i}" for i in range(n - 2))))[:n]
    dims = []
    for i, (axis, size) in enumerate(zip(axes, shape)):
        for d in (f"{layer}_{axis}", f"{own}_{axis}", f"{own}_d{i}_{size}"):
            if d not in f.dimensions:
                f.dimensions[d] = size
            if f.dimensions[d].size == size:
                break
        dims.append(d)
    return tuple(dims)


# ------------------------------------------------------------------------------------------ layout

def create_layout(g, *, layers: list[str], iterations: np.ndarray, bins: int, levels: int,
                  tensors: bool = True, branch: bool = False, units: int = 1, **_unused) -> None:
    """Dimensions, coordinates and empty per-level variables of a run (root or branch group).

    ``levels``: the planned number of levels (the fixed size of the ``level`` dim). ``tensors``: whether
    this group writes tensor files (always for the trunk: masks and the rewind point are needed to resume).
    ``units``: the size of the ``unit`` dim (the most units a layer has on either side of its weight).
    """
    g.dimensions = {"level": levels, "layer": len(layers), "bin": bins, "bnd": 2, "quantile": len(QUANTILES),
                    "atom": QF_SIZE, "eval": len(iterations), "unit": units}
    g.attrs["tensor_files"] = np.int8(tensors or not branch)
    _var(g, "level", ("level",), "i4", np.arange(levels, dtype=np.int32), long_name="IMP level (0 = dense)",
         units="1")
    _var(g, "layer", ("layer",), h5py.string_dtype(), np.array(layers, dtype=object), long_name="prunable layer")
    edges = bin_edges(bins)
    _var(g, "bin", ("bin",), "f8", (edges[1:] + edges[:-1]) / 2, long_name="bin centre / bin_scale",
         units="1", bounds="bin_bounds")
    _var(g, "bin_bounds", ("bin", "bnd"), "f8", np.stack([edges[:-1], edges[1:]], 1))  # CF: bounds take no units
    _var(g, "quantile", ("quantile",), "f8", QUANTILES, long_name="quantile level", units="1")
    _var(g, "unit", ("unit",), "i4", np.arange(units, dtype=np.int32),
         long_name="unit of a layer's weight (a row for fan_in, a column for fan_out)", units="1")
    _var(g, "iteration", ("eval",), "i4", np.asarray(iterations, dtype=np.int32),
         long_name="training iteration (optimiser steps)", units="1")
    scalar = "" if branch else " " + " ".join(_IDENTITY_NAMES)
    for name, (dims, dtype, long_name, units) in LEVEL_VARS.items():
        shape = tuple(g.dimensions[d].size for d in dims)
        chunks = shape if len(dims) == 1 else (1, *shape[1:])  # a commit writes its level's chunks only
        v = g.create_variable(name, dims, dtype=dtype, fillvalue=(np.nan if dtype[0] == "f" else None),
                              chunks=chunks, **(_PACK if len(dims) > 1 else _PLAIN))
        v.attrs.update(long_name=long_name, units=units)
        if name != "density":  # CF: makes density (and iteration) coordinates in plain xarray
            v.attrs["coordinates"] = ("density iteration" if "eval" in dims else "density") + scalar


_IDENTITY_NAMES: list[str] = ["run_id", "task", "seed"]  # task_<param> names are added per file


def write_identity(f, run_id: str, config_json: str, task: str) -> None:
    """Scalar coordinates of the root group (run_id, task, seed, task_<param>) so that plain
    ``xr.open_mfdataset(..., concat_dim="run")`` labels each run; ``task`` is the task's label."""
    cfg = json.loads(config_json)
    coords = {"run_id": (run_id, "identity of the run (hash of its non-default settings)"),
              "task": (task, "task and its non-default parameters"),
              "seed": (np.int32(cfg["seed"]), "run seed")}
    for k, v in sorted(cfg["task"]["params"].items()):
        if isinstance(v, bool):
            coords[f"task_{k}"] = (np.int8(v), f"task parameter {k} (1 = true)")
        elif isinstance(v, int) and abs(v) < 2**31:
            coords[f"task_{k}"] = (np.int32(v), f"task parameter {k}")
        elif isinstance(v, (int, float, str)):
            coords[f"task_{k}"] = (v, f"task parameter {k}")
    for name, (value, long_name) in coords.items():
        text = isinstance(value, str)
        v = f.create_variable(name, (), dtype=h5py.string_dtype() if text else np.asarray(value).dtype,
                              data=np.array(value, dtype=object) if text else np.asarray(value))
        v.attrs["long_name"] = long_name
        if not text:
            v.attrs["units"] = "1"
    extra = " ".join(k for k in coords if k.startswith("task_"))
    for name in LEVEL_VARS:
        if extra and "coordinates" in f[name].attrs:
            f[name].attrs["coordinates"] = f[name].attrs["coordinates"] + " " + extra


def create_run(path: Path, attrs: dict, task: str, **layout) -> None:
    """Create the summary file of a new run (root attributes, identity with the task label ``task``, layout);
    nothing is overwritten."""
    if tensor_dir(path).exists() and any(tensor_dir(path).iterdir()):
        raise StoreError(f"{str(tensor_dir(path))!r} already exists without its run file {str(path)!r}; "
                         "remove that folder or pass another --out")
    with atomic_update(path, create=True) as f:
        f.attrs.update(attrs)
        create_layout(f, **layout)
        write_identity(f, attrs["run_id"], attrs["config"], task)


def copy_run(src: str | Path, dst: str | Path) -> Path:
    """Copy a run (its summary file and its tensor folder) to a new path; an existing ``dst`` is refused."""
    src, dst = Path(src), Path(dst)
    check_run_file(src)
    if dst.exists() or tensor_dir(dst).exists():
        raise StoreError(f"{str(dst)!r} already exists; rgnet does not overwrite runs — pass another path")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if tensor_dir(src).is_dir():
        shutil.copytree(tensor_dir(src), tensor_dir(dst))
    shutil.copyfile(src, dst)   # the summary last: a copy is complete once its run file exists
    return dst


def create_branch(f, name: str, attrs: dict, **layout) -> None:
    """A ``branches/<name>`` group with the run layout (see :func:`create_layout`) on the trunk's levels."""
    g = f.create_group(f"{BRANCHES}/{name}")
    g.attrs.update(attrs)
    create_layout(g, **{**layout, "levels": f.dimensions["level"].size}, branch=True)
    v = g.create_variable("level_done", ("level",), dtype="i1", chunks=(f.dimensions["level"].size,),
                          fletcher32=True)
    v.attrs.update(long_name="the branch has trained the level", flag_values=np.array([0, 1], np.int8),
                   flag_meanings="false true")


# ------------------------------------------------------------------------------------------ commits

def commit_level(path: Path, level: int, record: dict, group: str | None = None,
                 provenance: dict | None = None) -> None:
    """Commit one trained level (``record`` as built by the IMP driver) of the trunk or of branch ``group``.

    Tensor files first (state dicts once, then the level's masks and weights), then the summary file, whose
    rename is the commit: ``levels_complete`` (trunk) or ``level_done`` (branch) says the level is there.
    ``provenance``: the machine that trained the level (:mod:`rgnet.store.provenance`); the tensor files name it
    in their ``history``, and the summary file's ``history`` gets a line when it differs from the last one named.
    """
    action = f"{group.strip('/')} level {level}" if group else f"level {level}"
    with h5py.File(path, "r") as f:
        g = f[group] if group else f
        planned, run_id = g["level"].shape[0], plain_attr(f.attrs["run_id"])
        files = bool(plain_attr(g.attrs.get("tensor_files", 1)))
    if not 0 <= level < planned:
        raise StoreError(f"cannot write level {level}: {str(path)!r} was created for levels 0-{planned - 1}")
    if files:
        attrs = {"run_id": run_id, "group": group or "/"}
        for kind in ("init", "rewind"):
            if kind in record and (group is None or not tensor_file(path, kind, group).exists()):
                # the trunk keeps both in init.nc; a branch keeps only the weights it starts from
                sub = {"init": record["init"], "rewind": record["rewind"]} if group is None else {kind: record[kind]}
                write_tensor_file(tensor_file(path, "init" if group is None else kind, group), attrs, sub,
                                  history=history_line(f"{action} ({' and '.join(sub)} weights)", provenance))
                if group is None:
                    break
        parts = {k: record[k] for k in ("mask", "next_mask", "trained") if record.get(k)}
        write_tensor_file(tensor_file(path, level, group), {**attrs, "level": level}, parts, level=level,
                          history=history_line(action, provenance))
    with replacing(path, copy=True) as buf, h5py.File(buf, "r+", libver=LIBVER) as f:
        check_current(path, f.attrs)
        g = f[group] if group else f
        for name in LEVEL_VARS:
            if name in record and name in g:   # a file from before a variable existed goes on without it
                g[name][level] = record[name]
        if group:
            g["level_done"][level] = 1
        else:
            f.attrs["levels_complete"] = np.int32(level + 1)
        if provenance is not None:  # resumed, branched or transferred on another machine: say so, keep the rest
            note_machine(f.attrs, provenance, action)


def root_attrs(run_id: str, config_json: str, task_summary: dict, versions: dict,
               provenance: dict | None = None) -> dict:
    """Root attributes of a new run file; ``provenance``: the machine recording it (:mod:`rgnet.store.provenance`)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    history = f"{now} created by {_command()}"
    extra = {}
    if provenance is not None:
        history += "\n" + history_line("record", provenance)
        extra[PROVENANCE_ATTR] = json.dumps(provenance, sort_keys=True)
    return {"rgnet_schema": SCHEMA_VERSION, "run_id": run_id, "config": config_json,
            "task": json.dumps(task_summary, sort_keys=True), "versions": json.dumps(versions, sort_keys=True),
            "created": now, "levels_complete": np.int32(0), "Conventions": "CF-1.8",
            "title": f"rgnet IMP run {run_id}", "history": history, **extra}


def _command() -> str:
    if not sys.argv or sys.argv[0].endswith("rgnet"):
        return " ".join(["rgnet", *sys.argv[1:]])[:500]
    return " ".join(["python", Path(sys.argv[0]).name, *sys.argv[1:]])[:500]  # the script, e.g. record_*.py


def _var(g, name, dims, dtype, data=None, **attrs):
    v = g.create_variable(name, dims, dtype=dtype, data=data)
    v.attrs.update(attrs)
    return v


def check_run_file(path: Path) -> dict:
    """Root attributes of an rgnet file; :class:`StoreError` if it is not one or cannot be read."""
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: plain_attr(v) for k, v in f.attrs.items()}
            planned = f["level"].shape[0] if "level" in f else None
    except OSError:
        raise StoreError(f"{str(path)!r} is not a readable HDF5 file (corrupt or another format); "
                         "rgnet left it untouched") from None
    if "rgnet_schema" not in attrs:
        raise StoreError(f"{str(path)!r} is an HDF5 file but not an rgnet run file; rgnet left it untouched")
    if int(attrs["rgnet_schema"]) > SCHEMA_VERSION:
        raise StoreError(f"{str(path)!r} uses rgnet schema {attrs['rgnet_schema']}, newer than this rgnet "
                         f"({SCHEMA_VERSION}); upgrade rgnet to read it")
    _check_metadata(path, attrs, planned)
    return attrs


def _check_metadata(path: Path, attrs: dict, planned: int | None) -> None:
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
    if not bad and int(attrs["rgnet_schema"]) >= 2:
        n, levels = int(attrs["levels_complete"]), json.loads(attrs["config"])["prune"].get("levels")
        if planned is None or n > planned or not isinstance(levels, int) or planned < levels + 1:
            raise StoreError(f"{str(path)!r} is an rgnet file with damaged metadata (levels_complete {n} and "
                             f"config prune.levels {levels} do not fit its {planned} planned levels); rgnet left it "
                             "untouched — restore it from a copy or record the run again")
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
