"""The run-file schema: one run, one netCDF-compatible HDF5 file, one level = one theory.

Root group (and every ``branches/<name>`` group, same layout)::

    dims      level (unlimited, 0 = dense), layer, bin, bnd = 2, quantile, eval
    coords    level, density(level), layer, bin, bin_bounds(bin, bnd), quantile, iteration(eval)
    per level metrics at the early-stop iteration, curves(level, eval), theory(level, layer, ...)
    group     tensors/{init,rewind,next_mask}: full state dicts and the next level's masks (resume, tickets)
              tensors/mask: masks per level (uint8); tensors/trained: trained weights per level (optional)

Root attributes: rgnet_schema, run_id, config (canonical JSON), task (data summary JSON), versions,
created, levels_complete.

Branches (``branches/<name>``: baselines and ticket transfers) have the same layout on the trunk's level axis
(``xr.open_datatree`` needs every ``level`` dim of a file to be the same; the writer extends branches when the
trunk grows), plus ``level_done(level)`` = 1 where the branch has trained the level (other levels are NaN, or
0 for integers). Their ``tensors`` group holds ``rewind`` (the weights every level starts from), ``mask`` and
``trained``; with ``store.tensors = false`` a branch has no ``tensors`` group (its masks and starting weights
are derivable: the trunk's masks, seeded random masks, the source run's ticket). Branch attributes: ``branch``
(JSON spec; a re-run must match it), ``config`` (the config it trained with), ``run_id``, and for transfers
``source_run_id``, ``source_config``, ``source_task``, ``source_path``, ``source_rewind_iteration``.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

# name -> (dims, dtype, long_name, units)
LEVEL_VARS: dict[str, tuple[tuple[str, ...], str, str, str]] = {
    "density": (("level",), "f8", "fraction of prunable weights remaining", "1"),
    "train_seconds": (("level",), "f8", "wall time spent training the level", "s"),
    "stop_iteration": (("level",), "i8", "early-stop iteration (train.early_stop criterion)", "iteration"),
    "diverged": (("level",), "i8", "1 where training diverged (non-finite loss or weights)", "1"),
    "diverged_iteration": (("level",), "i8", "evaluation iteration at which divergence was found (-1: none)",
                           "iteration"),
    **{f"{s}_{m}": (("level",), "f8", f"{name} {what} at the early-stop iteration", unit)
       for s, name in (("train", "training-set"), ("val", "validation"), ("test", "test"))
       for m, what, unit in (("loss", "cross-entropy", "nat"), ("acc", "accuracy", "1"))},
    **{f"{s}_{m}_final": (("level",), "f8", f"{name} {what} at the end of training", unit)
       for s, name in (("train", "training-set"), ("val", "validation"), ("test", "test"))
       for m, what, unit in (("loss", "cross-entropy", "nat"), ("acc", "accuracy", "1"))},
    **{f"curve_{s}_{m}": (("level", "eval"), "f8", f"{name} {what} during training", unit)
       for s, name in (("train", "training-set"), ("val", "validation"), ("test", "test"))
       for m, what, unit in (("loss", "cross-entropy", "nat"), ("acc", "accuracy", "1"))},
    "layer_density": (("level", "layer"), "f8", "fraction of the layer's weights remaining", "1"),
    "layer_count": (("level", "layer"), "i8", "number of surviving weights", "1"),
    "hist": (("level", "layer", "bin"), "i8", "histogram of surviving trained weights", "count"),
    "hist_rewind": (("level", "layer", "bin"), "i8", "histogram of the survivors' rewound values", "count"),
    "hist_outside": (("level", "layer"), "i8", "surviving trained weights outside the fixed grid", "count"),
    "w_quantile": (("level", "layer", "quantile"), "f8", "quantiles of surviving trained weights", "1"),
    "absw_quantile": (("level", "layer", "quantile"), "f8", "quantiles of |surviving trained weights|", "1"),
    "w_mean": (("level", "layer"), "f8", "mean of surviving trained weights", "1"),
    "w_std": (("level", "layer"), "f8", "standard deviation of surviving trained weights", "1"),
    "w_skew": (("level", "layer"), "f8", "skewness of surviving trained weights", "1"),
    "w_kurtosis": (("level", "layer"), "f8", "excess kurtosis of surviving trained weights", "1"),
    "w_absmean": (("level", "layer"), "f8", "mean |surviving trained weight|", "1"),
    "rewind_std": (("level", "layer"), "f8", "standard deviation of the survivors' rewound values", "1"),
}

METRIC_NAMES = [f"{s}_{m}" for s in ("train", "val", "test") for m in ("loss", "acc")]
