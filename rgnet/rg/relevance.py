"""Relevance flows: which units keep their couplings under the IMP flow.

For every prunable layer with weights ``W[out, in, ...]`` and every level: ``fan_out[unit]`` is the fraction of the
weights leaving input unit ``unit`` of the layer (column ``unit``: an input feature for the first layer, a hidden
unit after it) that survive, ``fan_in[unit]`` the fraction entering output unit ``unit`` (row ``unit``) that
survive, and ``*_mass`` the summed |w| of those surviving trained weights. In RG language these are the couplings
that stay relevant along the flow; per unit, they are the coarse-graining a structured (neuron) pruning would do.
Recorded per level (schema 2 files written since); for older files computed from the stored masks (every run file
has them) and, for the masses, the trained weights where stored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from rgnet.errors import StoreError
from rgnet.store.reader import open_run, open_tensors

KINDS = ("fan_out", "fan_in")


def relevance_flow(masks: xr.Dataset, trained: xr.Dataset | None = None) -> xr.Dataset:
    """``(level, layer, unit)`` relevance of every unit from per-level ``masks`` (one variable per layer, dims
    ``(level, out, in, ...)``, as :func:`rgnet.open_tensors` gives them) and optionally the ``trained`` weights
    (variables ``<layer>.weight``). Units beyond a layer's size are NaN."""
    layers = [str(v) for v in masks.data_vars]
    levels = masks["level"].values
    size = max(max(masks[x].shape[1], masks[x].shape[2]) for x in layers)
    out = {f"{k}{m}": np.full((len(levels), len(layers), size), np.nan) for k in KINDS for m in ("", "_mass")}
    for j, name in enumerate(layers):
        m = np.asarray(masks[name].values, bool)
        m = m.reshape(m.shape[0], m.shape[1], m.shape[2], -1)          # (level, out, in, kernel)
        out["fan_in"][:, j, : m.shape[1]] = m.mean(axis=(2, 3))
        out["fan_out"][:, j, : m.shape[2]] = m.mean(axis=(1, 3))
        w = None if trained is None or f"{name}.weight" not in trained else trained[f"{name}.weight"]
        if w is not None and w.size:
            a = np.abs(np.asarray(w.values, float)).reshape(m.shape) * m
            out["fan_in_mass"][:, j, : m.shape[1]] = a.sum(axis=(2, 3))
            out["fan_out_mass"][:, j, : m.shape[2]] = a.sum(axis=(1, 3))
    names = {"fan_in": "fraction of the unit's incoming weights (a row) that survive",
             "fan_out": "fraction of the unit's outgoing weights (a column) that survive",
             "fan_in_mass": "summed |w| of the unit's surviving incoming trained weights",
             "fan_out_mass": "summed |w| of the unit's surviving outgoing trained weights"}
    ds = xr.Dataset({k: (("level", "layer", "unit"), v, {"long_name": names[k], "units": "1"})
                     for k, v in out.items() if not np.isnan(v).all()},
                    coords={"level": levels, "layer": layers, "unit": np.arange(size)})
    return ds.assign_attrs(title="rgnet relevance flow: surviving couplings per unit and level")


def open_relevance(path: str | Path, group: str | None = None) -> xr.Dataset:
    """The relevance flow of a run file (the trunk, or a branch ``group``): as recorded per level, or for files
    recorded before it was, from the stored masks and trained weights (the masses only where weights are stored)."""
    def from_tensors() -> xr.Dataset:
        masks = open_tensors(path, "mask", group).load()
        try:
            trained = open_tensors(path, "trained", group).load()
        except (OSError, StoreError):   # a run recorded without trained tensors: fractions only
            return relevance_flow(masks)
        return relevance_flow(masks, trained.sel(level=masks["level"]) if "level" in trained.dims else None)

    return run_relevance(open_run(path, group), from_tensors)


def run_relevance(ds: xr.Dataset, compute) -> xr.Dataset:
    """The relevance flow of an opened run: its recorded variables, or ``compute()`` (the flow from its stored
    tensors) for a file recorded before they were."""
    if "fan_out" in ds:
        return ds[[v for v in ds.data_vars if v.startswith(KINDS)]].reset_coords(drop=True)
    return compute()
