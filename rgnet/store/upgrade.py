"""``rgnet upgrade``: convert schema-1 run files (tensors inside, unlimited level dim) to schema 2, in place.

The tensors are written to the run's tensor folder first; the new summary file then replaces the old one
by an atomic rename, so a kill at any moment leaves either the old file (upgrade again) or the new one.
Where a level's trained weights are stored, its theory is recomputed (histograms on the level's own grid,
quantile atoms for exact W1); elsewhere the stored histograms are kept on their level-0 grid, with
``hist_outside`` (the clipped counts), and ``w_qf`` stays NaN.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import h5netcdf
import h5py
import numpy as np

from rgnet.errors import StoreError
from rgnet.store.atomic import replacing
from rgnet.store.schema import LEVEL_VARS, SCHEMA_VERSION
from rgnet.store.writer import (
    _PACK,
    _SPACE,
    BRANCHES,
    LIBVER,
    check_run_file,
    create_branch,
    create_layout,
    exclusive,
    plain_attr,
    tensor_file,
    write_identity,
    write_tensor_file,
)
from rgnet.theory import level_theory, unit_count


def upgrade(path: str | Path, label: Callable[[str], str], log: Callable[[str], None] | None = None) -> bool:
    """Bring run file ``path`` to the current schema; False if it already is. Atomic and idempotent.

    ``label(config_json)`` names the run's task (``rgnet.tasks.task_label``): schema 2 stores it."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"run file {str(path)!r} does not exist; check the path")
    attrs = check_run_file(path)
    if int(attrs["rgnet_schema"]) >= SCHEMA_VERSION:
        if log:
            log(f"{path}: already schema {SCHEMA_VERSION}, the current one; nothing to do")
        return False
    with exclusive(path), h5py.File(path, "r") as old:
        groups = [None] + [f"{BRANCHES}/{b}" for b in sorted(old[BRANCHES])] if BRANCHES in old else [None]
        n = int(plain_attr(old.attrs["levels_complete"]))
        cfg = json.loads(attrs["config"])
        planned = max(int(cfg["prune"]["levels"]) + 1, n)
        summaries = {g: _convert_group(path, old, g, n, attrs["run_id"], int(cfg["store"]["bins"])) for g in groups}
        with replacing(path, copy=False) as buf, h5netcdf.File(buf, "w", libver=LIBVER, **_SPACE) as f:
            now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            history = f"{attrs.get('history', attrs['created'] + ' created by rgnet (schema 1)')}\n" \
                      f"{now} rgnet upgrade: schema {attrs['rgnet_schema']} -> {SCHEMA_VERSION}"
            keep = {k: v for k, v in attrs.items() if k != "_NCProperties"}
            f.attrs.update({**keep, "rgnet_schema": SCHEMA_VERSION, "levels_complete": np.int32(n),
                            "history": history})
            for g in groups:
                s = summaries[g]
                layout = dict(layers=s["layers"], iterations=s["iterations"], bins=s["bins"], levels=planned,
                              tensors=s["tensor_files"], units=s.get("units", summaries[None].get("units", 1)))
                if g is None:
                    create_layout(f, **layout)
                    write_identity(f, attrs["run_id"], attrs["config"], label(attrs["config"]))
                else:
                    create_branch(f, g.split("/", 1)[1], {k: plain_attr(v) for k, v in old[g].attrs.items()},
                                  **layout)
                _fill(f[g] if g else f, s, planned)
    if log:
        log(f"{path}: schema {attrs['rgnet_schema']} -> {SCHEMA_VERSION} ({n} levels, "
            f"{sum(1 for g in groups if g)} branches)")
    return True


def _convert_group(path: Path, old: h5py.File, group: str | None, n: int, run_id: str, bins: int) -> dict:
    """Summaries of one old group (recomputed where weights are stored); its tensors written to files."""
    g = old[group] if group else old
    layers = [x.decode() if isinstance(x, bytes) else str(x) for x in g["layer"][...]]
    done = np.flatnonzero(g["level_done"][:n]) if "level_done" in g else np.arange(n)
    values = {name: np.asarray(g[name][:n]) for name in LEVEL_VARS if name in g and name != "bin_scale"}
    scale = np.asarray(g["bin_scale"][...])
    values["bin_scale"] = np.broadcast_to(scale, (n, len(layers))).copy()
    values["hist_outside"] = np.asarray(g["hist_outside"][:n]) if "hist_outside" in g else None
    out = {"layers": layers, "iterations": np.asarray(g["iteration"][...]), "bins": g["bin"].shape[0],
           "values": values, "done": done, "tensor_files": "tensors" in g}
    if "level_done" in g:
        out["level_done"] = np.asarray(g["level_done"][:n])
    if not out["tensor_files"]:
        return out
    t = g["tensors"]
    if "mask" in t:
        out["units"] = unit_count([np.shape(v) for v in _group_arrays(t["mask"], 0).values()])
    state = {k: _group_arrays(t[k]) for k in ("init", "rewind") if k in t}
    attrs = {"run_id": run_id, "group": group or "/"}
    if group is None:
        write_tensor_file(tensor_file(path, "init"), attrs, state)
    else:
        write_tensor_file(tensor_file(path, "rewind", group), attrs, {"rewind": state["rewind"]})
    rewind = state["rewind"]
    recomputed = False
    for i in done:
        parts = {"mask": _group_arrays(t["mask"], int(i))}
        if group is None:
            nxt = t["next_mask"] if i == n - 1 else None
            parts["next_mask"] = _group_arrays(nxt) if nxt is not None else _group_arrays(t["mask"], int(i) + 1)
        trained = _group_arrays(t["trained"], int(i)) if "trained" in t and len(t["trained"]) else {}
        if trained:
            parts["trained"] = trained
            theory = level_theory({n_: trained[f"{n_}.weight"] for n_ in layers},
                                  {n_: rewind[f"{n_}.weight"] for n_ in layers}, parts["mask"], bins)
            for k, v in theory.items():
                values.setdefault(k, np.full((n, *np.shape(v)), np.nan))[i] = v
            recomputed = True
        write_tensor_file(tensor_file(path, int(i), group), {**attrs, "level": int(i)}, parts, level=int(i))
    if recomputed:
        values["hist_outside"] = None  # every histogram is on its own level's grid now
    return out


def _group_arrays(g: h5py.Group, level: int | None = None) -> dict[str, np.ndarray]:
    """The tensors of a schema-1 ``tensors/<kind>`` group (dimension scales skipped)."""
    out = {}
    for name, v in g.items():
        if not isinstance(v, h5py.Dataset) or name == "level" or plain_attr(v.attrs.get("CLASS", b"")) == \
                "DIMENSION_SCALE":
            continue
        out[name] = np.asarray(v[level] if level is not None else v[...])
    return out


def _fill(target, s: dict, planned: int) -> None:
    values = s["values"]
    n = len(next(iter(v for v in values.values() if v is not None)))
    for name, v in values.items():
        if v is None or name not in LEVEL_VARS:
            continue
        target[name][:n] = v.astype(target[name].dtype)
    if values.get("hist_outside") is not None:
        dims = ("level", "layer")
        h = target.create_variable("hist_outside", dims, "i4", chunks=(planned, len(s["layers"])), **_PACK)
        h[:n] = values["hist_outside"].astype(np.int32)
        h.attrs.update(long_name="surviving trained weights outside the level-0 grid (clipped into the edge bins; "
                                 "schema-1 recording)", units="1", coordinates="density")
    if "level_done" in s:
        target["level_done"][:n] = s["level_done"].astype(np.int8)
