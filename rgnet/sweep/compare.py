"""Are two recordings the same? Every variable of two run files and of their tensor files, compared bit for bit.

Only what a run measures is compared: wall-clock times (``train_seconds``) and file metadata (creation time,
history, versions) differ between any two recordings and are left out. Used to show that a sweep on a cluster
equals the same sweep run in one process.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from rgnet.store.writer import tensor_dir

SKIPPED = ("train_seconds",)   # wall time of a level: differs from run to run by nature


def differences(a: str | Path, b: str | Path) -> list[str]:
    """What differs between run files ``a`` and ``b`` (summaries of trunk and branches, and every tensor file)."""
    a, b = Path(a), Path(b)
    out = _datasets_differ(a, b)
    ta, tb = tensor_dir(a), tensor_dir(b)
    fa = {p.relative_to(ta) for p in ta.rglob("*.nc")} if ta.is_dir() else set()
    fb = {p.relative_to(tb) for p in tb.rglob("*.nc")} if tb.is_dir() else set()
    out += [f"tensor file {f} only in {a if f in fa else b}" for f in sorted(fa ^ fb)]
    for f in sorted(fa & fb):
        out += _datasets_differ(ta / f, tb / f)
    return out


def sweeps_differ(a: str | Path, b: str | Path) -> list[str]:
    """What differs between two sweep folders: their run files (``*.h5``, matched by name) one by one."""
    ra, rb = {p.name for p in Path(a).glob("*.h5")}, {p.name for p in Path(b).glob("*.h5")}
    out = [f"run {n} only in {a if n in ra else b}" for n in sorted(ra ^ rb)]
    for n in sorted(ra & rb):
        out += differences(Path(a) / n, Path(b) / n)
    return out


def _datasets_differ(a: Path, b: Path) -> list[str]:
    def collect(path: Path) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj: found.__setitem__(name, obj[()])
                         if isinstance(obj, h5py.Dataset) and name.rsplit("/", 1)[-1] not in SKIPPED else None)
        return found

    da, db = collect(a), collect(b)
    out = [f"{a.name}:{k} only in one file" for k in sorted(set(da) ^ set(db))]
    for k in sorted(set(da) & set(db)):
        x, y = da[k], db[k]
        if isinstance(x, np.ndarray) and x.dtype.kind == "O" or not isinstance(x, np.ndarray):
            same = np.array_equal(np.asarray(x, dtype=object), np.asarray(y, dtype=object))
        else:
            same = x.shape == y.shape and x.dtype == y.dtype and x.tobytes() == y.tobytes()  # bit for bit
        if not same:
            out.append(f"{a}:{k} differs")
    return out
