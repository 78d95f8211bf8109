"""Baselines a reviewer asks for, as transfer scores ``S[source, target]`` (higher = predicted to transfer).

- ``mask_iou``: overlap of the two tasks' tickets at the same level, minus its chance value (Paganini & Forde
  2001.05050). Chance is the IoU of independent random masks with the same per-layer densities,
  ``sum_l n_l d_al d_bl / sum_l n_l (d_al + d_bl - d_al d_bl)``, which is ``d / (2 - d)`` when every layer has
  density ``d``. Averaged over the pruned levels; between tasks only runs of the same seed are compared when
  there are any (they share the initialisation, as a transferred ticket and the target's own ticket do; masks
  of different seeds overlap at chance, Grosse & Backes 2006.07014).
- ``input_distance``: class-conditional sliced Wasserstein-1 distance between the tasks' training inputs, with
  the classes of the two tasks matched by an optimal assignment (a light OTDD, Alvarez-Melis & Fusi 2020).
- ``dense_accuracy``: minus the difference of the tasks' dense validation accuracies (the verdicts use the test
  accuracy).
- ``additive``: a source effect plus a target effect fitted to the measured verdicts, leave one task out (a pair
  is predicted from fits without its source and without its target): how far "good sources" and "easy targets"
  alone explain the matrix.
- ``spectral_w1``: the published method of 2302.09160: one DMD spectrum per task from its runs pooled
  (output-layer weights, time delays, exact DMD at rank 10), raw W1 between the tasks' spectra, no calibration.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr
from scipy.optimize import linear_sum_assignment

from rgnet.config import TaskConfig
from rgnet.errors import ConfigError, DataError
from rgnet.tasks import load_task
from rgnet.universality._runs import LoadedRun
from rgnet.universality.distances import w1_spectra
from rgnet.universality.signatures import spectrum


def excess_mask_iou(runs: Sequence[LoadedRun]) -> np.ndarray:
    """``(run, run2)`` mask IoU minus chance, averaged over the pruned levels both runs have (``tensors/mask``)."""
    masks = []
    for r in runs:
        m = r.tensors("mask")
        masks.append({n: np.asarray(m[n].transpose("level", ...).values, bool).reshape(m.sizes["level"], -1)
                      for n in m.data_vars})
    n_levels = min(next(iter(m.values())).shape[0] for m in masks)
    layers = list(masks[0])
    total = np.zeros((len(runs), len(runs)))
    for level in range(1, n_levels):
        inter = union_chance = inter_chance = 0.0
        count = np.zeros(len(runs))
        for name in layers:
            x = np.stack([m[name][level] for m in masks]).astype(float)
            size = x.shape[1]
            c = x.sum(1)
            inter = inter + x @ x.T
            count = count + c
            d = c / size
            inter_chance = inter_chance + size * np.outer(d, d)
            union_chance = union_chance + size * (d[:, None] + d[None, :] - np.outer(d, d))
        union = count[:, None] + count[None, :] - inter
        total += inter / union - inter_chance / union_chance
    return total / max(n_levels - 1, 1)


def task_mean(run_matrix: np.ndarray, labels: np.ndarray, seeds: np.ndarray, tasks: Sequence[str],
              same_seed: bool = False) -> np.ndarray:
    """Mean of a ``(run, run2)`` matrix over the run pairs of each pair of tasks (off-diagonal of the result).

    ``same_seed``: use only pairs of runs with equal seeds when the two tasks have any.
    """
    k = len(tasks)
    out = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(k):
            if i == j:
                continue
            a, b = labels == tasks[i], labels == tasks[j]
            block = run_matrix[np.ix_(a, b)]
            if same_seed:
                same = seeds[a][:, None] == seeds[b][None, :]
                if same.any():
                    block = block[same]
            out[i, j] = np.mean(block)
    return out


def input_distance(task_configs: dict[str, dict], n_projections: int = 64, n_quantiles: int = 100,
                   seed: int = 0) -> np.ndarray:
    """``(task, other)`` class-conditional sliced W1 between training inputs (tasks in sorted order).

    Each class-conditional input distribution is projected on ``n_projections`` fixed random unit directions;
    the sliced W1 of two classes is the mean over directions of the L1 distance of their quantile functions
    (``n_quantiles`` midpoints). The classes of two tasks are matched one-to-one by minimal total distance, and
    the task distance is the mean matched class distance (input units). Tasks whose data cannot be loaded
    (image files missing) or whose inputs differ in size give NaN.
    """

    tasks = sorted(task_configs)
    quantiles, shapes = {}, {}
    t_grid = (np.arange(n_quantiles) + 0.5) / n_quantiles
    dirs = None
    for t in tasks:
        cfg = task_configs[t]
        try:
            data = load_task(TaskConfig(cfg["name"], cfg["params"]))
        except (DataError, ConfigError):   # files missing, or a task this rgnet does not know: NaN
            continue
        x = data.x_train.reshape(len(data.x_train), -1).astype(float)
        shapes[t] = x.shape[1]
        if dirs is None:
            rng = np.random.default_rng(seed)
            dirs = rng.standard_normal((x.shape[1], n_projections))
            dirs /= np.linalg.norm(dirs, axis=0)
        if x.shape[1] != dirs.shape[0]:
            continue
        proj = x @ dirs
        quantiles[t] = np.stack([np.quantile(proj[data.y_train == c], t_grid, axis=0)
                                 for c in np.unique(data.y_train)])  # (class, quantile, projection)
    k = len(tasks)
    out = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(k):
            a, b = quantiles.get(tasks[i]), quantiles.get(tasks[j])
            if a is None or b is None:
                continue
            cost = np.abs(a[:, None] - b[None, :]).mean(axis=(2, 3))
            rows, cols = linear_sum_assignment(cost)
            out[i, j] = cost[rows, cols].mean()
    return out


def additive_scores(transfers: np.ndarray) -> np.ndarray:
    """Leave-one-task-out fit of ``transfers[s, t] ~ mu + a_s + b_t``: the pair ``(s, t)`` is predicted in the
    fold of ``t`` (fitted without any pair of ``t``: ``mu + a_s``) and in the fold of ``s`` (without any pair of
    ``s``: ``mu + b_t``), and the two predictions averaged. No pair's own task informs its prediction."""
    k = len(transfers)
    ok = ~np.eye(k, dtype=bool) & np.isfinite(transfers)
    folds = np.full((2, k, k), np.nan)
    for h in range(k):
        keep = ok.copy()
        keep[h, :] = keep[:, h] = False
        src, tgt = np.nonzero(keep)
        if len(src) == 0:
            continue
        design = np.zeros((len(src), 1 + 2 * k))
        design[:, 0] = 1.0
        design[np.arange(len(src)), 1 + src] = 1.0
        design[np.arange(len(src)), 1 + k + tgt] = 1.0
        coef = np.linalg.lstsq(design, transfers[src, tgt].astype(float), rcond=None)[0]
        mu, a, b = coef[0], coef[1:1 + k], coef[1 + k:]
        seen_src, seen_tgt = np.isin(np.arange(k), src), np.isin(np.arange(k), tgt)
        folds[0, :, h] = np.where(seen_src, mu + a, np.nan)   # column h: the sources' effects
        folds[1, h, :] = np.where(seen_tgt, mu + b, np.nan)   # row h: the targets' effects
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # a pair no fold could predict stays NaN
        out = np.nanmean(folds, axis=0)
    return np.where(ok, out, np.nan)


def pooled_spectrum(trajectories: Sequence[xr.DataArray], rank: int = 10, delays: int = 2) -> np.ndarray:
    """Eigenvalues of one exact DMD of several runs' ``(level, component)`` trajectories, pairs pooled over
    runs (2302.09160 concatenates its initialisations), at ``rank`` (lowered to the numerical rank)."""
    traj = xr.concat([t.transpose("level", ...) for t in trajectories], dim="run", join="outer")
    return np.asarray(spectrum(traj, rank, delays)["eigenvalues"].values)


def spectral_w1_scores(spectra: dict[str, np.ndarray], tasks: Sequence[str]) -> np.ndarray:
    """``-W1`` between the tasks' pooled spectra (off-diagonal; NaN where a task has none)."""
    k = len(tasks)
    out = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(k):
            if i != j and tasks[i] in spectra and tasks[j] in spectra:
                out[i, j] = -w1_spectra(spectra[tasks[i]], spectra[tasks[j]])
    return out
