"""Where a run was computed: the machine record kept in a run file's ``provenance`` attribute and in the CF
``history`` of its files.

A rerun with the same run_id and library versions can still round differently on another CPU, BLAS, thread
count or device, so every run file says what computed it. The record itself is made where torch is loaded
(:func:`rgnet.imp.provenance.machine`) and handed down; this module only formats and reads it (the store
imports no torch). ``history`` gets one line when a run is created and one more whenever a later level is
committed on a machine other than the last one named there (a resume, a branch, a transfer elsewhere)::

    2026-12-06T10:00:00Z rgnet 0.1.0 record: Intel(R) Xeon(R) (AVX512), torch 2.13.0 (BLAS mkl, ...), 1 thread, cpu
    2026-12-07T08:12:44Z rgnet 0.1.0 level 5: AMD EPYC 7763 (AVX2), torch 2.13.0 (BLAS mkl, ...), 4 threads, cpu
"""

from __future__ import annotations

import json
import re
import time
from importlib.metadata import PackageNotFoundError, version

PROVENANCE_ATTR = "provenance"   # root attribute of a run file: the machine that created it, as JSON
# a history line that names a machine: "<time> rgnet <version> <record | [group ]level N>: <machine>"
_MACHINE_LINE = re.compile(r"^\S+ rgnet \S+ (?:record|(?:\S+ )?level \d+): (.+)$")


def rgnet_version() -> str:
    """This rgnet's version, from the package metadata (``0+unknown`` when not installed)."""
    try:
        return version("rgnet")
    except PackageNotFoundError:
        return "0+unknown"


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def machine_summary(p: dict) -> str:
    """The machine of a provenance record in one phrase: ``<cpu>, torch <version> (<blas>), <n> threads, <device>``."""
    cpu = str(p.get("cpu") or "unknown CPU") + (f" ({p['cpu_capability']})" if p.get("cpu_capability") else "")
    blas = ", ".join(f"{k} {p[key]}" for k, key in (("BLAS", "torch_blas"), ("LAPACK", "torch_lapack"))
                     if p.get(key)) or "BLAS unknown"
    if p.get("torch_parallel"):
        blas += f", {p['torch_parallel']}"
    n = p.get("threads")
    device = str(p.get("device") or "unknown device") + (f" ({p['gpu']})" if p.get("gpu") else "")
    return f"{cpu}, torch {p.get('torch', '?')} ({blas}), {n} thread{'' if n == 1 else 's'}, {device}"


def history_line(action: str, provenance: dict | None = None) -> str:
    """One CF ``history`` line: ``<UTC time> rgnet <version> <action>[: <machine>]``."""
    ver = (provenance or {}).get("rgnet") or rgnet_version()
    return f"{utc_now()} rgnet {ver} {action}" + (f": {machine_summary(provenance)}" if provenance else "")


def machine_lines(history: str | None) -> list[str]:
    """The lines of a ``history`` attribute that name a machine, oldest first."""
    return [line for line in str(history or "").splitlines() if _MACHINE_LINE.match(line)]


def note_machine(attrs, provenance: dict, action: str) -> bool:
    """Append a history line to ``attrs`` (an HDF5 attribute set) if ``provenance`` is another machine than the last
    one its ``history`` names (or it names none); True if it did. Never rewrites earlier lines."""
    history = attrs.get("history", "")
    history = history.decode() if isinstance(history, bytes) else str(history)
    last = machine_lines(history)
    if last and _MACHINE_LINE.match(last[-1]).group(1) == machine_summary(provenance):
        return False
    attrs["history"] = (history + "\n" if history else "") + history_line(action, provenance)
    return True


def read_provenance(attrs: dict) -> dict | None:
    """The ``provenance`` record of a file's root attributes (None: not recorded, or unreadable)."""
    try:
        value = json.loads(attrs[PROVENANCE_ATTR])
    except (KeyError, TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None
