"""Writing result files (verdicts, flow reports, classes, tickets, sweep indexes) without ever losing a file.

One rule for every ``--out``: nothing that belongs to a run is ever replaced — its summary file, its tensor
folder and every file in it, its lock, a ticket, a sweep's index — and ``--overwrite`` replaces only a file that
is positively a previous output of the same command (its root attribute ``rgnet_output`` names the command).
Anything else that exists (a damaged file, a text file, another command's result) is refused. The file is built
in memory and renamed into place (:mod:`rgnet.store.atomic`), so a crash or a full disk leaves the old state.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Callable, Iterable

import h5py

from rgnet.errors import StoreError
from rgnet.store.atomic import write_bytes
from rgnet.store.cf import in_memory_writes
from rgnet.store.writer import LOCK_SUFFIX, TENSORS_SUFFIX

OUTPUT_ATTR = "rgnet_output"   # root attribute of a result file: the command that wrote it
# root attributes of files that belong to runs and sweeps
PROTECTED_ATTRS = {"rgnet_schema": "an rgnet run file", "rgnet_ticket": "an rgnet ticket file",
                   "rgnet_tensors": "a tensor file of an rgnet run", "rgnet_sweep_index": "a sweep's index"}
# protected files that one command writes and may replace with --overwrite (tickets carry no rgnet_output)
OWNED_BY = {"rgnet_ticket": "ticket"}


def write_new(path: str | Path, write: Callable[[io.BytesIO], None], *, command: str, overwrite: bool = False,
              inputs: Iterable[str | Path] = ()) -> Path:
    """Call ``write(buffer)`` (an in-memory HDF5/netCDF file), stamp it as ``command``'s output, and put it at
    ``path`` atomically; refuse what :func:`check_new` refuses.

    Parameters
    ----------
    path : str or Path
        The output file.
    write : callable
        Writes the complete file into the ``io.BytesIO`` it is given (e.g. ``ds.to_netcdf(buf, engine="h5netcdf")``).
    command : str
        The command whose output this is (``tickets``, ``flow``, ...): ``--overwrite`` replaces only its own files.
    overwrite : bool
        Replace an existing ``path`` that ``command`` wrote before.
    inputs : iterable of paths
        The files the command read; an output that is one of them is always refused.
    """

    out = check_new(path, command, overwrite, inputs)
    buf = io.BytesIO()
    with in_memory_writes():
        write(buf)
    with h5py.File(buf, "r+") as f:
        f.attrs[OUTPUT_ATTR] = command
    write_bytes(out, buf.getbuffer())
    return out


def check_new(path: str | Path, command: str, overwrite: bool = False, inputs: Iterable[str | Path] = ()) -> Path:
    """The refusals of :func:`write_new`, without writing: call it before long work whose result goes there."""
    out = Path(path)
    if any(_same_file(out, p) for p in inputs):
        raise StoreError(f"--out {str(out)!r} is one of the command's input files; rgnet never writes over its "
                         "inputs — pass another --out")
    owner = belongs_to_run(out, command)
    if owner:
        raise StoreError(f"--out {str(out)!r} is {owner}; rgnet never writes there (not even with --overwrite) — "
                         "pass another --out")
    if out.is_dir():
        raise StoreError(f"--out {str(out)!r} is a folder; pass a file name")
    if out.exists():
        if not overwrite:
            raise StoreError(f"--out {str(out)!r} already exists; pass another --out, or --overwrite to replace it")
        if _output_of(out) != command:
            raise StoreError(f"--out {str(out)!r} exists and is not a file that `rgnet {command} --out` wrote, so "
                             "--overwrite does not replace it; pass another --out")
    return out


def belongs_to_run(path: Path, command: str | None = None) -> str | None:
    """What run or sweep ``path`` belongs to, in words (None: nothing's), judged by its place and its contents.

    ``command``: files of the kind that this command writes itself (:data:`OWNED_BY`: ``ticket``) are not counted;
    the place never is (nothing inside a run's tensor folder, nothing beside a run's tensors or lock)."""
    name = path.name
    place = inside_run(path)
    if place:
        return place
    if path.with_name(name + TENSORS_SUFFIX).exists() or path.with_name(name + LOCK_SUFFIX).exists():
        return "a run file (its tensor folder or lock is beside it)"
    attrs = _root_attrs(path)
    return next((what for key, what in PROTECTED_ATTRS.items()
                 if attrs and key in attrs and OWNED_BY.get(key) != command), None)


def inside_run(path: Path) -> str | None:
    """Whether ``path``, by its place or name alone, is a run's tensor file, lock or temporary file (in words)."""
    if any(p.name.endswith(TENSORS_SUFFIX) for p in path.parents if p.name):
        return "inside a run's tensor folder"
    if path.name.endswith(LOCK_SUFFIX) or path.name.endswith(".partial"):
        return "a run's lock or temporary file"
    return None


def _output_of(path: Path) -> str | None:
    attrs = _root_attrs(path) or {}
    value = attrs.get(OUTPUT_ATTR) or next((cmd for key, cmd in OWNED_BY.items() if key in attrs), None)
    return value.decode() if isinstance(value, bytes) else value


def _root_attrs(path: Path) -> dict | None:
    """Root attributes of an HDF5 file (None: missing, unreadable or not HDF5)."""

    if not path.is_file():
        return None
    try:
        with h5py.File(path, "r") as f:
            return dict(f.attrs)
    except (OSError, ValueError):
        return None


def _same_file(a: Path, b: str | Path) -> bool:
    try:
        return a.exists() and Path(b).exists() and os.path.samefile(a, b)
    except OSError:
        return False
