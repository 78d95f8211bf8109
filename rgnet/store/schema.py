"""The run-file schema (version 2): one run = one small netCDF-4 file of summaries + its tensor folder.

``run.h5`` (root group, and every ``branches/<name>`` group with the same layout)::

    dims      level (fixed: the planned levels, 0 = dense), layer, bin, bnd = 2, quantile, atom, eval, unit
    coords    level, density(level), layer, bin, bin_bounds(bin, bnd), quantile, iteration(eval)
              scalar (root only): run_id, task, seed, task_<param> for every scalar task parameter
    per level metrics at the early-stop iteration, curves(level, eval), theory(level, layer, ...)

Root attributes: rgnet_schema, run_id, config (canonical JSON), task (data summary JSON), versions,
provenance (JSON: the machine that created the run; files from before it have none), created, history (CF;
a line per machine that committed levels, :mod:`rgnet.store.provenance`), levels_complete (levels >=
levels_complete are not written yet: readers hide them), Conventions, title.

Tensors live beside the file, in ``run.h5.tensors/`` (one netCDF file each, written to a temporary name,
fsynced and renamed, so a commit never copies what earlier levels wrote)::

    init.nc            groups init, rewind: full state dicts (the IMP initialisation and the rewind point)
    level_NNN.nc       groups mask (uint8, per prunable layer), next_mask (the masks level N+1 trains with),
                       trained (trained weights, unless store.tensors = false)
    branches/<name>/rewind.nc, branches/<name>/level_NNN.nc    the same for a branch (mask, trained)

Variable names carry no dots (``fc1.weight`` is stored as ``fc1_weight`` with attribute
``parameter = "fc1.weight"``); every tensor file has attributes run_id, group, (per level) level and history.
Dimensions are named per layer in the root group (``fc1_out``, ``fc1_in``, ``conv1_kernel_h``, ``bn1_channel``:
:func:`rgnet.store.writer.layer_dims`), shared by a layer's weight, bias and masks; files written before then
have ``d<axis>_<size>`` dimensions, read alike.

Branches (``branches/<name>``: baselines and ticket transfers) share the trunk's level axis, plus
``level_done(level)`` = 1 where the branch has trained the level. Branch attributes: ``branch`` (JSON spec; a
re-run must match it), ``config``, ``run_id``, ``tensor_files`` and for transfers ``source_run_id``,
``source_config``, ``source_task``, ``source_path``, ``source_rewind_iteration``. A branch recorded with
``store.tensors = false`` has no tensor files (its masks and weights are derivable).

Schema 1 (before) kept the tensors inside the file (``tensors/{init,rewind,next_mask,mask,trained}``), an
unlimited level dim, int64 variables, one histogram grid fixed at level 0 and no ``w_qf``; readers open
both, ``rgnet upgrade`` converts 1 to 2.
"""

from __future__ import annotations

SCHEMA_VERSION = 2

_LOSS = "cross-entropy in nats (natural logarithm)"
SPLITS = ("train", "val", "test")   # the data splits every evaluation measures, each by loss and accuracy
_SPLIT_NAMES = dict(zip(SPLITS, ("training-set", "validation", "test")))
_MEASURES = (("loss", _LOSS), ("acc", "accuracy"))

# name -> (dims, dtype, long_name, units)
LEVEL_VARS: dict[str, tuple[tuple[str, ...], str, str, str]] = {
    "density": (("level",), "f8", "fraction of prunable weights remaining", "1"),
    "train_seconds": (("level",), "f8", "wall time spent training the level", "s"),
    "stop_iteration": (("level",), "i4", "early-stop iteration (train.early_stop criterion), in optimiser steps",
                       "1"),
    "diverged": (("level",), "i1", "1 where training diverged (non-finite loss or weights)", "1"),
    "diverged_iteration": (("level",), "i4", "evaluation iteration at which divergence was found (-1: none), in "
                           "optimiser steps", "1"),
    **{f"{s}_{m}": (("level",), "f8", f"{name} {what} at the early-stop iteration", "1")
       for s, name in _SPLIT_NAMES.items() for m, what in _MEASURES},
    **{f"{s}_{m}_final": (("level",), "f8", f"{name} {what} at the end of training", "1")
       for s, name in _SPLIT_NAMES.items() for m, what in _MEASURES},
    **{f"curve_{s}_{m}": (("level", "eval"), "f8", f"{name} {what} during training", "1")
       for s, name in _SPLIT_NAMES.items() for m, what in _MEASURES},
    "layer_density": (("level", "layer"), "f8", "fraction of the layer's weights remaining", "1"),
    "layer_count": (("level", "layer"), "i4", "number of surviving weights", "1"),
    "bin_scale": (("level", "layer"), "f8", "weight value at bin coordinate 1 (largest surviving |weight|)", "1"),
    "hist": (("level", "layer", "bin"), "i4", "histogram of surviving trained weights", "1"),
    "hist_rewind": (("level", "layer", "bin"), "i4", "histogram of the survivors' rewound values", "1"),
    "w_qf": (("level", "layer", "atom"), "f4", "quantile atoms of surviving trained weights (sorted survivors, "
             "or quantile-function means over equal probability cells; NaN-padded)", "1"),
    "w_quantile": (("level", "layer", "quantile"), "f8", "quantiles of surviving trained weights", "1"),
    "absw_quantile": (("level", "layer", "quantile"), "f8", "quantiles of |surviving trained weights|", "1"),
    "w_mean": (("level", "layer"), "f8", "mean of surviving trained weights", "1"),
    "w_std": (("level", "layer"), "f8", "standard deviation of surviving trained weights", "1"),
    "w_skew": (("level", "layer"), "f8", "skewness of surviving trained weights", "1"),
    "w_kurtosis": (("level", "layer"), "f8", "excess kurtosis of surviving trained weights", "1"),
    "w_absmean": (("level", "layer"), "f8", "mean |surviving trained weight|", "1"),
    "rewind_std": (("level", "layer"), "f8", "standard deviation of the survivors' rewound values", "1"),
    # relevance flow: per unit of a layer's weight W[out, in, ...] (NaN beyond the layer's size)
    "fan_in": (("level", "layer", "unit"), "f4", "fraction of an output unit's incoming weights (a row of W) that "
               "survive", "1"),
    "fan_out": (("level", "layer", "unit"), "f4", "fraction of an input unit's outgoing weights (a column of W) that "
                "survive", "1"),
    "fan_in_mass": (("level", "layer", "unit"), "f4", "summed |w| of an output unit's surviving incoming trained "
                    "weights", "1"),
    "fan_out_mass": (("level", "layer", "unit"), "f4", "summed |w| of an input unit's surviving outgoing trained "
                     "weights", "1"),
}

METRIC_NAMES = [f"{s}_{m}" for s in SPLITS for m, _ in _MEASURES]   # what one evaluation measures

# tensor files: kinds that are per level, and the state dicts written once
LEVEL_KINDS = ("mask", "next_mask", "trained")
STATE_KINDS = ("init", "rewind")
