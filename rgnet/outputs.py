"""Writing result files (verdicts, flow reports, classes) without ever losing an existing file.

Every ``--out`` of every command goes through :func:`write_new`: an existing file is refused unless the user
passes ``--overwrite``, and even then an rgnet run or ticket file, or an input of the same command, is never
replaced. The file is written under a temporary name and renamed into place, so a crash leaves either the old
state or the complete new file.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable, Iterable

from rgnet.errors import StoreError

PROTECTED_ATTRS = ("rgnet_schema", "rgnet_ticket")  # root attributes of run files and ticket files


def write_new(path: str | Path, write: Callable[[Path], None], *, overwrite: bool = False,
              inputs: Iterable[str | Path] = ()) -> Path:
    """Call ``write(tmp)`` and rename ``tmp`` to ``path``; refuse to replace what must not be replaced.

    Parameters
    ----------
    path : str or Path
        The output file.
    write : callable
        Writes the complete file at the path it is given (a temporary name in the same folder).
    overwrite : bool
        Replace an existing ``path`` — unless it is an rgnet run or ticket file or one of ``inputs``.
    inputs : iterable of paths
        The files the command read; an output that is one of them is always refused.
    """
    out = check_new(path, overwrite, inputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return out


def check_new(path: str | Path, overwrite: bool = False, inputs: Iterable[str | Path] = ()) -> Path:
    """The refusals of :func:`write_new`, without writing: call it before long work whose result goes there."""
    out = Path(path)
    if any(_same_file(out, p) for p in inputs):
        raise StoreError(f"--out {str(out)!r} is one of the command's input files; rgnet never writes over its "
                         "inputs — pass another --out")
    if out.exists():
        if _is_rgnet_file(out):
            raise StoreError(f"--out {str(out)!r} is an rgnet run or ticket file; rgnet never overwrites those "
                             "(not even with --overwrite) — pass another --out")
        if not overwrite:
            raise StoreError(f"--out {str(out)!r} already exists; pass another --out, or --overwrite to replace it")
        if out.is_dir():
            raise StoreError(f"--out {str(out)!r} is a folder; pass a file name")
    return out


def _same_file(a: Path, b: str | Path) -> bool:
    try:
        return a.exists() and Path(b).exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _is_rgnet_file(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return any(k in f.attrs for k in PROTECTED_ATTRS)
    except OSError:
        return False
