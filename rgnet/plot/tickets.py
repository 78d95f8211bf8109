"""The lottery-ticket ladder (accuracy vs density per arm) and the early-stop iteration vs density."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from rgnet.config import STOP_RULES
from rgnet.errors import ConfigError
from rgnet.plot._style import (
    COLUMN,
    OKABE_ITO,
    PAGE,
    colour,
    density_axis,
    finish,
    finish_density_panel,
    marker,
    new_axes,
    new_figure,
    styled,
)

#: Colour, marker and label of each kind of arm (a transfer or unknown arm gets the next free colour).
ARMS = {
    "imp": (OKABE_ITO["blue"], "o", "IMP ticket"),
    "reinit": (OKABE_ITO["vermillion"], "s", "random re-init"),
    "random_prune_layerwise": (OKABE_ITO["green"], "^", "random mask (layerwise)"),
    "random_prune_global": (OKABE_ITO["orange"], "v", "random mask (global)"),
    "rewind": (OKABE_ITO["purple"], "D", "IMP, rewind to step {k}"),
    "transfer": (OKABE_ITO["sky"], "P", "ticket from {k}"),
}


def arm_style(arm: str, index: int = 0, source: str = "") -> tuple[str, str, str]:
    """``(colour, marker, label)`` of an arm of a ``winning_tickets`` Dataset."""
    if arm in ARMS:
        return ARMS[arm]
    kind, _, rest = arm.replace(" from ", "_", 1).partition("_")   # transfer from <task> | rewind_<k>
    if kind in ARMS:
        c, m, label = ARMS[kind]
        return c, m, label.format(k=source or rest)
    return colour(index), marker(index), arm


def metric_label(metric: str) -> str:
    """Axis label of an accuracy metric name: ``test_acc_final`` -> ``test accuracy, end of training (%)``."""
    split, _, rest = metric.partition("_")
    split = {"val": "validation"}.get(split, split)
    when = "end of training" if rest.endswith("final") else "early stop"
    return f"{split} accuracy at {when} (%)" if when == "early stop" else f"{split} accuracy, {when} (%)"


def _arm_order(arm: str) -> int:
    kind = arm if arm in ARMS else arm.replace(" from ", "_", 1).partition("_")[0]
    order = ["imp", "rewind", "reinit", "random_prune_layerwise", "random_prune_global", "transfer"]
    return order.index(kind) if kind in order else len(order)


def _experiment(ds: xr.Dataset, experiment: str | None) -> xr.Dataset:
    names = [str(e) for e in ds["experiment"].values]
    if experiment is None:
        if len(names) > 1:
            raise ConfigError(f"The tickets Dataset holds {len(names)} experiments; pass experiment= one of {names}.")
        experiment = names[0]
    if experiment not in names:
        raise ConfigError(f"Unknown experiment {experiment!r}; choose one of {names}.")
    return ds.sel(experiment=experiment)


@styled
def ladder(tickets: xr.Dataset, experiment: str | None = None, arms: Sequence[str] | None = None, ax=None,
           winning: bool = True):
    """Lottery-ticket ladder: accuracy (mean ± std over seeds) vs density for each arm.

    Parameters
    ----------
    tickets : xr.Dataset
        Output of :func:`rgnet.winning_tickets`: ``acc_mean, acc_std, seeds (experiment, arm, level)``,
        ``dense_mean, dense_std (experiment)``, ``density (experiment, level)``, ``winning_density
        (experiment, arm)``; its ``metric`` attribute (early stop ``test_acc`` or end of training
        ``test_acc_final``) labels the y axis.
    experiment : str, optional
        Which experiment (task label) to draw; needed when the Dataset holds several.
    arms : sequence of str, optional
        Arms to draw, in order (default every arm with at least one seed).
    ax : matplotlib Axes, optional
        Where to draw (default a new one-column figure).
    winning : bool
        Mark the IMP winning-ticket density with a dotted vertical line.

    Returns
    -------
    matplotlib Axes
        x: weights remaining (%, log, dense on the left); y: accuracy (%). The grey band is the dense
        network's mean ± std (the matching region's lower edge is its bottom).
    """
    ds = _experiment(tickets, experiment)
    present = sorted((str(a) for a in ds["arm"].values if int(ds["seeds"].sel(arm=a).max()) > 0), key=_arm_order)
    arms = present if arms is None else list(arms)
    unknown = [a for a in arms if a not in present]
    if unknown:
        raise ConfigError(f"Arms {unknown} have no runs in this Dataset; choose from {present}.")
    ax = new_axes(ax)
    density = np.asarray(ds["density"].values, dtype=float)
    dm, dsd = 100 * float(ds["dense_mean"]), 100 * float(ds["dense_std"])
    if np.isfinite(dsd):
        ax.axhspan(dm - dsd, dm + dsd, color="0.85", lw=0, zorder=0, label="dense ± std")
    ax.axhline(dm, color="0.5", lw=0.8, zorder=0.5)
    for i, arm in enumerate(arms):
        c, m, label = arm_style(arm, i)
        mean = 100 * np.asarray(ds["acc_mean"].sel(arm=arm).values, dtype=float)
        std = 100 * np.nan_to_num(np.asarray(ds["acc_std"].sel(arm=arm).values, dtype=float))
        ok = np.isfinite(mean) & np.isfinite(density)
        ax.plot(density[ok], mean[ok], color=c, marker=m, label=label, zorder=3)
        ax.fill_between(density[ok], (mean - std)[ok], (mean + std)[ok], color=c, alpha=0.2, lw=0, zorder=2)
    if winning and "imp" in arms:
        w = float(ds["winning_density"].sel(arm="imp"))
        if np.isfinite(w):
            ax.axvline(w, color=OKABE_ITO["blue"], ls=":", lw=1, label=f"IMP winning ticket ({100 * w:.3g} %)")
    density_axis(ax, density)
    seeds = int(ds["seeds"].sel(arm=arms[0]).max()) if arms else 0
    return finish(ax, ylabel=metric_label(tickets.attrs.get("metric", "test_acc")),
                  title=f"{ds['experiment'].item()} ({seeds} seeds)", legend=True)


@styled
def ladder_panels(*tickets: xr.Dataset, experiment: str | None = None, arms: Sequence[str] | None = None):
    """One :func:`ladder` panel per Dataset (e.g. early stop and end of training), side by side, shared y.

    Returns
    -------
    matplotlib Figure
    """
    if not tickets:
        raise ConfigError("ladder_panels needs at least one winning_tickets Dataset.")
    fig, axes = new_figure(1, len(tickets), (PAGE if len(tickets) > 1 else COLUMN, 2.8), sharey=True)
    for i, (ds, ax) in enumerate(zip(tickets, axes[0])):
        ladder(ds, experiment=experiment, arms=arms, ax=ax)
        if i:
            ax.get_legend().remove()
            ax.tick_params(labelleft=True)
    return fig


@styled
def early_stop(runs: xr.Dataset, by: str | None = None, rule: str | None = None, ax=None):
    """Early-stop iteration vs density: each run thin, mean ± std bold.

    Parameters
    ----------
    runs : xr.Dataset
        :func:`rgnet.open_runs` output (dims ``run, level``) or one run (:func:`rgnet.open_run`), with
        ``stop_iteration`` and the coordinate ``density``.
    by : str, optional
        A ``run`` coordinate (``"task"``, ``"task_seed"`` ...): one colour and one mean per value.
    rule : str, optional
        The early-stopping rule of the recording, for the title (e.g. ``"max. validation accuracy"``; the
        run config's ``train.early_stop``).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        The iteration resolution is the evaluation interval of the recording.
    """
    if "stop_iteration" not in runs:
        raise ConfigError("The Dataset has no stop_iteration; open run files with rgnet.open_runs or open_run.")
    stop = runs["stop_iteration"].astype(float)
    if "run" not in stop.dims:
        stop = stop.expand_dims(run=1)
    density = runs["density"]
    density = np.asarray((density.mean("run") if "run" in density.dims else density).values, dtype=float)
    if by is not None and by not in stop.coords:
        choices = [c for c in stop.coords if stop[c].dims == ("run",)]
        raise ConfigError(f"by={by!r} is not a run coordinate; choose one of {choices}.")
    groups = [("all runs", stop)] if by is None else [
        (str(v), stop.isel(run=np.flatnonzero(stop[by].values == v))) for v in dict.fromkeys(stop[by].values)]
    ax = new_axes(ax)
    for i, (label, s) in enumerate(groups):
        c = colour(i)
        values = np.asarray(s.transpose("run", "level").values)
        for row in values:
            ax.plot(density, row, color=c, lw=0.6, alpha=0.35, zorder=1)
        mean = np.nanmean(values, 0)
        std = np.nanstd(values, 0, ddof=1) if len(values) > 1 else np.zeros_like(mean)
        ax.plot(density, mean, color=c, marker=marker(i), label=f"{label} ({len(values)})", zorder=3)
        ax.fill_between(density, mean - std, mean + std, color=c, alpha=0.2, lw=0, zorder=2)
    density_axis(ax, density)
    ax.set_ylim(bottom=0)
    finish(ax, ylabel="early-stop iteration (training steps)",
           title=f"early stopping ({rule})" if rule else "early stopping")
    if "iteration" in runs.coords and runs["iteration"].size > 1:
        every = int(np.diff(np.asarray(runs["iteration"].values)).min())
        ax.text(0.99, 0.01, f"evaluated every {every} steps", transform=ax.transAxes, ha="right", va="bottom",
                fontsize=6.5, color="0.35")
    ax.legend(title=f"{by} (runs): mean ± std" if by else "mean ± std", loc="upper left", ncols=2 if len(groups) > 3
              else 1)
    return ax


@styled
def stopping_rules(study: xr.Dataset, interval: int | None = None):
    """The early-stopping study: test accuracy an early-stopping rule gives up against the best along training.

    Parameters
    ----------
    study : xr.Dataset
        ``scripts/early_stopping_study.py`` output (``data/protocol/early_stopping.nc``): ``picked``, ``best``,
        ``final`` (test accuracy at the rule's iteration, the best along training, the end of training) with dims
        ``(model, seed, level, criterion, interval)`` and ``density (model, level)``.
    interval : int, optional
        Evaluation interval (steps) to draw (default: 100 if present, else the first).

    Returns
    -------
    matplotlib Figure
        One panel per model: ``best − picked`` per rule and ``best − final`` (end of training), mean ± std over
        seeds, in points vs density. Lower is better; 0 is the oracle.
    """
    missing = [v for v in ("picked", "best", "final", "density") if v not in study]
    if missing:
        raise ConfigError(f"The study Dataset lacks {missing}; pass data/protocol/early_stopping.nc.")
    intervals = [int(v) for v in study["interval"].values]
    interval = interval if interval is not None else (100 if 100 in intervals else intervals[0])
    if interval not in intervals:
        raise ConfigError(f"interval={interval} was not studied; choose one of {intervals}.")
    s = study.sel(interval=interval)
    models = [str(m) for m in s["model"].values]
    fig, axes = new_figure(1, len(models), (PAGE if len(models) > 1 else COLUMN, 2.6), sharey=True)
    for ax, model in zip(axes[0], models):
        m = s.sel(model=model)
        density = np.asarray(m["density"].values, dtype=float)
        per = {v: m[v] if "criterion" in m[v].dims else m[v].expand_dims(criterion=m["criterion"].values)
               for v in ("best", "picked", "final")}
        curves = [(STOP_RULES.get(str(c), str(c)).replace("imum", "."), (per["best"] - per["picked"]).sel(criterion=c))
                  for c in m["criterion"].values]
        curves.append(("end of training", (per["best"] - per["final"]).isel(criterion=0)))
        for k, (label, lost) in enumerate(curves):
            values = 100 * np.asarray(lost.transpose("seed", "level").values, dtype=float)
            ok = np.isfinite(values).any(0) & np.isfinite(density)
            mean = np.nanmean(values[:, ok], 0)
            std = np.nanstd(values[:, ok], 0, ddof=1) if values.shape[0] > 1 else np.zeros_like(mean)
            c = OKABE_ITO["black"] if label == "end of training" else colour(k)
            ax.plot(density[ok], mean, color=c, marker=marker(k), label=label, zorder=3,
                    ls="--" if label == "end of training" else "-")
            ax.fill_between(density[ok], mean - std, mean + std, color=c, alpha=0.15, lw=0, zorder=2)
        ax.axhline(0, color="0.5", lw=0.8, zorder=0)
        finish_density_panel(ax, axes[0, 0], density, "best − selected test accuracy (points)",
                             f"{model} ({s.sizes['seed']} seeds, evaluated every {interval} steps)")
    axes[0, 0].legend(loc="upper left", title="network selected by")
    return fig
