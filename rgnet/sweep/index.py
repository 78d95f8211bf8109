"""The sweep's index, ``OUT/index.nc``: every run (run_id, label, task key and parameters, seed, path, status) and
every unit (kind, status, error, timing), as netCDF. ``rgnet.open_runs``, ``rgnet.winning_tickets`` and
``rgnet.transfer_matrix`` take its path in place of a list of run files."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import h5py
import numpy as np
import xarray as xr

from rgnet.catalog import INDEX_ATTR
from rgnet.errors import StoreError
from rgnet.store.atomic import write_bytes
from rgnet.store.cf import in_memory_writes, self_describing
from rgnet.sweep.plan import Unit
from rgnet.sweep.spec import Spec
from rgnet.tasks import task_label

INDEX_NAME = "index.nc"
STATUS_MEANINGS = {
    "complete": "the trunk and every branch the spec asks for are recorded",
    "incomplete": "something is missing (not run yet, or skipped because a unit it needs failed)",
    "failed": "a unit writing this run failed (see error)",
    "diverged": "training diverged (see error)",
}


def check_index_path(out: Path) -> Path:
    """``out/index.nc``; :class:`StoreError` if a file there is not a sweep index (it is never replaced)."""
    path = out / INDEX_NAME
    if path.exists() and not is_index(path):
        raise StoreError(f"{str(path)!r} exists and is not an rgnet sweep index; rgnet will not replace it — move "
                         "it away or pass another --dir")
    return path


def is_index(path: str | Path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return INDEX_ATTR in f.attrs
    except OSError:
        return False


def write_index(out: Path, spec: Spec, units: list[Unit], results: dict[str, dict],
                state: dict[str, tuple[int, int]], spec_path: str) -> Path:
    """Write ``out/index.nc`` from the plan, this invocation's ``results`` and the files' ``state`` after it."""


    unit_status = {u.name: _unit_status(u, results.get(u.name), state[u.name]) for u in units}
    writers: dict[str, list[Unit]] = {}
    for u in units:
        writers.setdefault(u.path, []).append(u)
    runs = list(spec.runs)
    rows = [_run_status([unit_status[u.name] for u in writers[str(out.resolve() / r.file)]]) for r in runs]
    trunk = {u.path: state[u.name][0] for u in units if u.kind == "trunk"}
    cfgs = [r.config.to_dict() for r in runs]
    run_vars = {
        "label": (r.label for r in runs), "task": (task_label(c) for c in cfgs),
        "model": (c["model"]["name"] for c in cfgs), "seed": (np.int32(r.config.seed) for r in runs),
        "path": (r.file for r in runs), "status": (s for s, _ in rows), "error": (e for _, e in rows),
        "levels_complete": (np.int32(trunk[str(out.resolve() / r.file)]) for r in runs),
        "levels_planned": (np.int32(r.config.prune.levels + 1) for r in runs),
    }
    ds = xr.Dataset({k: ("run", list(v)) for k, v in run_vars.items()},
                    coords={"run_id": ("run", [r.config.run_id for r in runs])})
    for k, values in _task_params(cfgs).items():
        ds[f"task_{k}"] = ("run", values, {"long_name": f"task parameter {k}"})
    info = [(u, unit_status[u.name], results.get(u.name, {})) for u in units]
    ds = ds.assign_coords(unit=("unit", [u.name for u in units]))
    ds["unit_kind"] = ("unit", [u.kind for u in units])
    ds["unit_run_id"] = ("unit", [u.run_id for u in units])
    ds["unit_source_run_id"] = ("unit", [u.source_id for u in units])
    ds["unit_status"] = ("unit", [s for _, (s, _), _ in info])
    ds["unit_error"] = ("unit", [e for _, (_, e), _ in info])
    ds["unit_levels_done"] = ("unit", np.array([state[u.name][0] for u in units], np.int32))
    ds["unit_levels_planned"] = ("unit", np.array([state[u.name][1] for u in units], np.int32))
    ds["unit_seconds"] = ("unit", np.array([r.get("end", np.nan) - r.get("start", np.nan) for _, _, r in info]))
    ds["unit_worker"] = ("unit", [f"{r['host']}:{r['pid']}" if r.get("pid", -1) > 0 else "" for _, _, r in info])
    _describe(ds)
    ds.attrs.update({INDEX_ATTR: np.int32(1), "spec": spec.text, "spec_path": spec_path,
                     "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                     "status_meanings": json.dumps(STATUS_MEANINGS)})
    self_describing(ds, "rgnet sweep index: the runs of a sweep (dim run) and its units of work (dim unit)")
    buf = io.BytesIO()
    with in_memory_writes():
        ds.to_netcdf(buf, engine="h5netcdf")
    path = check_index_path(out)  # the sweep replaces its own index, never another file
    write_bytes(path, buf.getbuffer())
    return path


def _unit_status(u: Unit, result: dict | None, state: tuple[int, int]) -> tuple[str, str]:
    """(status, error) of a unit: ``done`` if the files hold all its levels, else what happened to it."""
    if result is not None and result["status"] not in ("ok", "done"):
        return result["status"], result["error"]
    if state[0] >= state[1]:
        return "done", ""
    return "pending", ""


def _run_status(units: list[tuple[str, str]]) -> tuple[str, str]:
    for bad in ("diverged", "failed", "error"):
        for status, error in units:
            if status == bad:
                return ("failed" if bad == "error" else bad), error
    if all(s == "done" for s, _ in units):
        return "complete", ""
    return "incomplete", next((e for s, e in units if s == "skipped"), "")


def _task_params(cfgs: list[dict]) -> dict[str, list]:
    """Scalar task parameters along ``run`` (NaN / "" where a run's task has no such parameter)."""
    keys = sorted({k for c in cfgs for k, v in c["task"]["params"].items() if isinstance(v, (int, float, str))})
    out = {}
    for k in keys:
        vals = [c["task"]["params"].get(k) for c in cfgs]
        if all(isinstance(v, str) or v is None for v in vals):
            out[k] = ["" if v is None else v for v in vals]
        elif all(isinstance(v, (int, float)) or v is None for v in vals):
            out[k] = [np.nan if v is None else float(v) for v in vals]
    return out


def _describe(ds) -> None:
    names = {"label": "run label in the sweep spec (task key, model key, grid values)",
             "task": "task and its non-default parameters", "model": "model name", "seed": "run seed",
             "path": "run file, relative to the index's folder", "status": "run status: " + ", ".join(STATUS_MEANINGS),
             "error": "first error of a unit writing this run", "run_id": "identity of the run (hash of its settings)",
             "levels_complete": "complete IMP levels of the trunk", "levels_planned": "IMP levels the config plans",
             "unit": "unit of work (one worker call's worth: a trunk, a run's baselines, one transfer)",
             "unit_kind": "trunk, baselines or transfer", "unit_run_id": "run_id of the file the unit writes",
             "unit_source_run_id": "run_id of a transfer's source", "unit_error": "why the unit failed or was skipped",
             "unit_status": "done, pending, failed, diverged, error (an exception no retry cured) or skipped",
             "unit_levels_done": "levels of the unit recorded in the file", "unit_levels_planned": "levels it trains",
             "unit_seconds": "wall time of the unit in the last invocation (NaN: not run)",
             "unit_worker": "host:pid that ran it last"}
    for k, text in names.items():
        ds[k].attrs.setdefault("long_name", text)
    for k in ("seed", "levels_complete", "levels_planned", "unit_levels_done", "unit_levels_planned"):
        ds[k].attrs["units"] = "1"
    ds["unit_seconds"].attrs["units"] = "s"


# ------------------------------------------------------------------------------------------ reading (no torch)
