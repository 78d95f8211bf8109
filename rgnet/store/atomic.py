"""The one way rgnet replaces a file: build it in memory, write it under a temporary name, fsync, rename.

HDF5 never writes to the disk itself: a file is built in a ``BytesIO`` and its bytes written with plain Python
I/O. A full disk, a file-size limit or a quota then fails in one place, as :class:`WriteError`, before the
rename — the previous file stays as it was, and HDF5's own state is never left half-written (a failed HDF5
write to disk can crash the process when the file is closed).
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Iterator

from rgnet.errors import WriteError


def fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def write_bytes(path: Path, data: bytes | memoryview) -> None:
    """Replace ``path`` by ``data`` atomically; :class:`WriteError` (``path`` unchanged) if the disk refuses."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as e:
        raise WriteError(f"could not write {str(path)!r}: {e.strerror or e}; nothing already committed was changed "
                         "— free space (or raise the limit) and run the same command again to resume") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


@contextlib.contextmanager
def replacing(path: Path, copy: bool) -> Iterator[io.BytesIO]:
    """Yield an in-memory file (the bytes of ``path`` if ``copy``); on a clean exit it replaces ``path``."""
    buf = io.BytesIO(Path(path).read_bytes() if copy else b"")
    yield buf
    write_bytes(path, buf.getbuffer())
