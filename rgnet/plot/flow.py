"""The flow itself: weight distributions per layer across levels, W1 flow speed, coupling trajectories."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
import xarray as xr

from rgnet.errors import ConfigError
from rgnet.plot._style import (
    COLUMN,
    OKABE_ITO,
    PAGE,
    SEQUENTIAL,
    colour,
    finish,
    interval,
    new_axes,
    new_figure,
    styled,
)
from rgnet.rg.flow import bin_edges
from rgnet.rg.trajectory import as_runs, feature_dim

KIND_COLOURS = {"relevant": OKABE_ITO["vermillion"], "marginal": OKABE_ITO["orange"], "irrelevant": OKABE_ITO["black"],
                "undecided": "0.6"}
#: Levels drawn by default in a weight-distribution panel: at most this many, evenly spaced, first and last included.
MAX_CURVES = 6
_COUPLING_LABELS = {"log_std": "ln σ", "kurtosis": "excess kurtosis", "log_density": "ln density"}


def coupling_label(name: str) -> str:
    """Readable axis label of a coupling name: ``log_std:fc1`` -> ``ln σ (fc1)``, ``absq50:fc2`` -> ..."""
    kind, _, layer = str(name).partition(":")
    if kind.startswith("absq") and kind[4:].isdigit():
        label = f"{int(kind[4:])} % quantile of |w|/σ"
    else:
        label = _COUPLING_LABELS.get(kind, kind)
    return f"{label} ({layer})" if layer else label


def _single_run(ds: xr.Dataset, run: int) -> xr.Dataset:
    if "run" not in ds.dims:
        return ds
    if not 0 <= run < ds.sizes["run"]:
        n = ds.sizes["run"]
        raise ConfigError(f"run={run} is out of range; the Dataset has {n} runs, so choose 0 .. {n - 1}.")
    return ds.isel(run=run)


def layer_densities(ds: xr.Dataset, layer: str, rescaled: bool = False,
                    min_count: float | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Probability densities of one layer's surviving weights at every level, from the stored histograms.

    Parameters
    ----------
    ds : xr.Dataset
        One run (no ``run`` dim) with ``hist (level, layer, bin)``, ``bin_bounds``, ``bin_scale``, ``w_std`` and
        optionally ``hist_outside`` (weights beyond the grid count in the normalisation).
    layer : str
        Layer name.
    rescaled : bool
        Densities of ``w / w_std`` (dimensionless) instead of ``w``.
    min_count : float, optional
        Merge 2, 4, 8 ... neighbouring bins of a level until its occupied bins hold at least this many weights
        on average (late levels keep few weights, and their fine histograms are mostly noise). Default: no merging.

    Returns
    -------
    list of (edges, density), one per level
        ``edges`` (bin edges in weight units, or in units of ``w_std`` when rescaled; from
        :func:`rgnet.rg.flow.bin_edges`) and ``density`` = counts / (total count x bin width), which integrates
        to the fraction of the level's weights inside the grid.
    """
    layers = [str(v) for v in ds["layer"].values]
    if layer not in layers:
        raise ConfigError(f"Unknown layer {layer!r}; the run has layers {layers}.")
    edges = bin_edges(ds).sel(layer=layer)
    if "level" not in edges.dims:
        edges = edges.expand_dims(level=ds["level"].values)
    edges = np.asarray(edges.transpose("level", "edge").values, dtype=float)
    counts = np.asarray(ds["hist"].sel(layer=layer).transpose("level", "bin").values, dtype=float)
    total = counts.sum(1)
    if "hist_outside" in ds:
        total = total + np.asarray(ds["hist_outside"].sel(layer=layer).values, dtype=float)
    sigma = np.asarray(ds["w_std"].sel(layer=layer).values, dtype=float) if rescaled else np.ones(len(counts))
    out = []
    for e, c, n, s in zip(edges, counts, total, sigma):
        starts = np.arange(0, c.size, _merge_factor(c, min_count))
        c, e = np.add.reduceat(c, starts), e[np.r_[starts, c.size]]
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append((e / s, c / n / np.diff(e) * s))
    return out


def _merge_factor(counts: np.ndarray, min_count: float | None) -> int:
    occupied = np.flatnonzero(counts)
    if min_count is None or occupied.size == 0:
        return 1
    span, n, k = occupied[-1] - occupied[0] + 1, counts.sum(), 1
    while 2 * k <= counts.size and n / np.ceil(span / k) < min_count:
        k *= 2
    return k


def _level_colours(levels: np.ndarray):
    cmap = mpl.colormaps[SEQUENTIAL]
    norm = mpl.colors.BoundaryNorm(np.arange(levels.min(), levels.max() + 2) - 0.5, cmap.N)
    return cmap, norm


def _level_colourbar(fig, cmap, norm, levels, ax):
    sm = mpl.cm.ScalarMappable(norm=norm, cmap=cmap)
    step = max(1, int(np.ceil(len(levels) / 7)))
    bar = fig.colorbar(sm, ax=ax, ticks=levels[::step], pad=0.02, aspect=30)
    bar.set_label("IMP level")
    bar.ax.tick_params(labelsize=mpl.rcParams["ytick.labelsize"])
    return bar


def _default_levels(n: int) -> np.ndarray:
    return np.unique(np.round(np.linspace(0, n - 1, min(n, MAX_CURVES))).astype(int))


@styled
def weight_distributions(ds: xr.Dataset, layer: str, rescaled: bool = False, run: int = 0,
                         levels: Sequence[int] | None = None, logy: bool = True, min_count: float | None = 10,
                         colorbar: bool = True, ax=None):
    """Distribution of one layer's surviving trained weights at each IMP level (one curve per level).

    Parameters
    ----------
    ds : xr.Dataset
        A run (:func:`rgnet.open_run`) or runs (:func:`rgnet.open_runs`; ``run`` picks one).
    layer : str
        Layer name.
    rescaled : bool
        Plot ``w / σ`` with σ the level's std (the shape of the distribution) instead of ``w``.
    run : int
        Index along ``run`` when ``ds`` has several runs.
    levels : sequence of int, optional
        Levels to draw (default at most ``MAX_CURVES`` evenly spaced ones, the first and last included).
    logy : bool
        Log density axis (shows the tails and the hole that pruning cuts around zero).
    min_count : float, optional
        Merge neighbouring bins of sparse levels to this many weights per bin on average (see
        :func:`layer_densities`); None draws the stored bins.
    colorbar : bool
        Add a colour bar of the IMP level.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    one = _single_run(ds, run)
    curves = layer_densities(one, layer, rescaled, min_count)
    all_levels = np.asarray(one["level"].values)
    pick = _default_levels(len(all_levels)) if levels is None else np.flatnonzero(np.isin(all_levels, list(levels)))
    cmap, norm = _level_colours(all_levels)
    ax = new_axes(ax)
    for i in pick:
        edges, density = curves[i]
        ax.stairs(np.where(density > 0, density, np.nan) if logy else density, edges, color=cmap(norm(all_levels[i])),
                  lw=0.9)
    if logy:
        ax.set_yscale("log")
    if colorbar:
        _level_colourbar(ax.figure, cmap, norm, all_levels[pick], ax)
    xlabel = "w / σ  (σ: the level's std)" if rescaled else "trained weight w"
    ylabel = "probability density of w/σ" if rescaled else "probability density (1/weight)"
    return finish(ax, xlabel, ylabel, title=f"layer {layer}")


@styled
def weight_flow(ds: xr.Dataset, run: int = 0, layers: Sequence[str] | None = None, levels: Sequence[int] | None = None,
                logy: bool = True, min_count: float | None = 10):
    """The flow of weight distributions: one column per layer, raw ``w`` on top and rescaled ``w/σ`` below.

    Parameters as in :func:`weight_distributions`.

    Returns
    -------
    matplotlib Figure
    """
    one = _single_run(ds, run)
    layers = [str(v) for v in one["layer"].values] if layers is None else list(layers)
    fig, axes = new_figure(2, len(layers), (PAGE if len(layers) > 1 else COLUMN, 4.2))
    for j, layer in enumerate(layers):
        for i, rescaled in enumerate((False, True)):
            weight_distributions(one, layer, rescaled=rescaled, levels=levels, logy=logy, min_count=min_count,
                                 colorbar=False, ax=axes[i, j])
            if j:
                axes[i, j].set_ylabel("")
            if i:
                axes[i, j].set_title("")
    all_levels = np.asarray(one["level"].values)
    shown = all_levels[_default_levels(len(all_levels))] if levels is None else all_levels[
        np.isin(all_levels, list(levels))]
    _level_colourbar(fig, *_level_colours(all_levels), shown, axes)
    return fig


@styled
def flow_speed(flow: xr.Dataset, variable: str = "w1_shape", ax=None):
    """Wasserstein-1 distance between successive levels, per layer (mean ± std over runs).

    Parameters
    ----------
    flow : xr.Dataset
        Output of :func:`rgnet.rg.wasserstein_flow` (dims ``(run,) level, layer``; entry ``n`` is the step
        ``n -> n+1``).
    variable : {"w1_shape", "w1", "d_log_scale"}
        ``w1_shape`` (W1 of ``w/σ``: does the shape still move?, drawn with the total ``speed`` in black),
        ``w1`` (W1 in weight units) or ``d_log_scale`` (how fast σ runs).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    if variable not in flow or "layer" not in flow[variable].dims:
        raise ConfigError(f"{variable!r} is not a per-layer variable of the flow; choose 'w1_shape', 'w1' or "
                          "'d_log_scale' from rgnet.rg.wasserstein_flow.")
    ax = new_axes(ax)
    level = np.asarray(flow["level"].values)
    series = [(str(layer), flow[variable].sel(layer=layer), colour(i), 1.0)
              for i, layer in enumerate(flow["layer"].values)]
    if variable == "w1_shape" and "speed" in flow:
        series.append(("speed (all layers)", flow["speed"], OKABE_ITO["black"], 1.8))
    for label, da, c, lw in series:
        values = np.atleast_2d(np.asarray(da.transpose(..., "level").values, dtype=float))
        mean = np.nanmean(values, 0)
        n = values.shape[0]
        ax.plot(level, mean, color=c, lw=lw, marker="o", ms=2.5, label=label)
        if n > 1:
            std = np.nanstd(values, 0, ddof=1)
            ax.fill_between(level, mean - std, mean + std, color=c, alpha=0.2, lw=0)
    if variable == "d_log_scale":
        ax.axhline(0, color="0.5", lw=0.6)
    else:
        ax.set_ylim(bottom=0)
    attrs = flow[variable].attrs
    units = attrs.get("units", "1")
    ylabel = attrs.get("long_name", variable) + ("" if units == "1" else f" ({units})")
    ax.set_xticks(level)
    finish(ax, "IMP level n (step n → n+1)", ylabel.replace(" to the next level", "\nto the next level"),
           title="flow speed of the weight distributions")
    n = int(np.prod([s for d, s in flow[variable].sizes.items() if d not in ("level", "layer")]))
    ax.legend(title=f"mean ± std over {n} runs" if n > 1 else None, ncols=2)
    return ax


def _fmt_eigenvalue(lam: complex) -> str:
    if abs(lam.imag) < 1e-12:
        return f"{lam.real:.3g}"
    return f"{lam.real:.3g} ± {abs(lam.imag):.3g}i"


@styled
def coupling_flow(traj: xr.DataArray, lin: xr.Dataset | None = None, x: str | int = 0, y: str | int = 1,
                  directions: bool = True, ax=None):
    """Coupling trajectories in the plane of two couplings, with the fitted fixed point and eigen-directions.

    Parameters
    ----------
    traj : xr.DataArray
        Trajectory ``(run, level, coupling)`` (``run`` optional) from :func:`rgnet.rg.couplings` or a toy map.
        With a single coupling the plot is coupling vs level.
    lin : xr.Dataset, optional
        :func:`rgnet.rg.linearise` of the same couplings: its ``fixed_point`` (with its bootstrap interval per
        axis) and its modes through the fixed point (colour: relevant / marginal / irrelevant): a real eigenvalue as
        a segment along its eigenvector projected on the plane, a conjugate pair (a rotation) as the projected
        ellipse of the plane spanned by Re v and Im v, with an arrowhead in the sense it turns. A fixed point far
        outside the trajectories is named in a note instead of stretching the axes.
    x, y : str or int
        The two couplings (names or positions) spanning the plane.
    directions : bool
        Draw the eigen-directions.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    feat = feature_dim(traj)
    runs = as_runs(traj)
    names = [str(v) for v in runs[feat].values] if feat in runs.coords else [str(k) for k in range(runs.sizes[feat])]
    values = np.asarray(runs.values, dtype=float)  # (run, level, feature)
    ax = new_axes(ax)
    if len(names) == 1:
        return _coupling_vs_level(runs, values, names[0], lin, ax)
    i, j = (_coupling_index(names, v) for v in (x, y))
    level = np.asarray(runs["level"].values)
    cmap, norm = _level_colours(level)
    for run in values:
        keep = np.all(np.isfinite(run), axis=1)
        run, lev = run[keep], level[keep]
        if len(run) < 2:
            continue
        ax.plot(run[:, i], run[:, j], color="0.55", lw=0.7, zorder=2)
        ax.scatter(run[:, i], run[:, j], c=lev, cmap=cmap, norm=norm, s=9, zorder=3, linewidths=0)
        ax.annotate("", xy=run[-1, [i, j]], xytext=run[-2, [i, j]],
                    arrowprops={"arrowstyle": "-|>", "color": "0.35", "lw": 0.7, "mutation_scale": 7}, zorder=3)
    _level_colourbar(ax.figure, cmap, norm, level, ax)
    finite = values[np.all(np.isfinite(values), axis=2)]
    lo, hi = finite[:, [i, j]].min(0), finite[:, [i, j]].max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    note = ""
    if lin is not None:
        fp = np.asarray(lin["fixed_point"].values, dtype=float)[[i, j]]
        inside = np.all((fp > lo - span) & (fp < hi + span))
        if inside:
            if "fixed_point_ci" in lin:
                ci = np.asarray(lin["fixed_point_ci"].transpose(..., "bound").values, dtype=float)[[i, j]]
                interval(ax, fp[1], *ci[0], OKABE_ITO["black"], vertical=False, zorder=5)
                interval(ax, fp[0], *ci[1], OKABE_ITO["black"], zorder=5)
            ax.plot(*fp, "*", color=OKABE_ITO["black"], ms=9, zorder=6, label="fixed point g* (bootstrap interval)")
            lo, hi = np.minimum(lo, fp), np.maximum(hi, fp)
            span = np.where(hi > lo, hi - lo, 1.0)
            if directions:
                drawn = _eigen_directions(ax, lin, fp, i, j, 0.3 * span)
                if len(drawn):  # keep every mode inside the panel
                    lo, hi = np.minimum(lo, drawn.min(0)), np.maximum(hi, drawn.max(0))
                    span = np.where(hi > lo, hi - lo, 1.0)
        else:
            note = f"fitted g* off-panel at ({fp[0]:.3g}, {fp[1]:.3g})"
    ax.set_xlim(lo[0] - 0.08 * span[0], hi[0] + 0.08 * span[0])
    ax.set_ylim(lo[1] - 0.08 * span[1], hi[1] + 0.08 * span[1])
    if note:
        ax.text(0.02, 0.02, note, transform=ax.transAxes, fontsize=6.5, color="0.3")
    finish(ax, coupling_label(names[i]), coupling_label(names[j]),
           title=f"coupling flow ({values.shape[0]} run{'s' * (values.shape[0] > 1)})")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=6.5)
    return ax


def _coupling_index(names: list[str], key: str | int) -> int:
    if isinstance(key, (int, np.integer)) and 0 <= key < len(names):
        return int(key)
    if key in names:
        return names.index(key)
    raise ConfigError(f"Unknown coupling {key!r}; choose a position 0..{len(names) - 1} or one of {names}.")


def _eigen_directions(ax, lin: xr.Dataset, fp: np.ndarray, i: int, j: int, reach: np.ndarray) -> np.ndarray:
    """Each mode of the linearised map through ``fp``, as large as fits within ``reach`` (per axis) of ``fp``.

    A real eigenvalue is a direction: a segment along its eigenvector projected on the plane. A conjugate pair
    is one mode, a rotation: the map turns the plane spanned by Re v and Im v by arg λ per level while scaling it
    by |λ|, so it is drawn as the projection of the ellipse ``Re(e^{iθ} v)`` with an arrowhead in the sense of
    the rotation (a choice of phase of v would pick an arbitrary direction in that plane). Returns the points
    drawn, ``(n, 2)``."""
    lam = np.asarray(lin["eigenvalues"].values, dtype=complex)
    vec = np.asarray(lin["eigenvectors"].values, dtype=complex)
    kinds = [str(k) for k in lin["kind"].values] if "kind" in lin else ["marginal"] * len(lam)
    seen: list[complex] = []
    drawn = [np.empty((0, 2))]
    scale = 1e-9 * max(1.0, float(np.abs(lam).max(initial=0.0)))
    for k, (value, kind) in enumerate(zip(lam, kinds)):
        if any(abs(value - np.conj(s)) <= scale for s in seen):
            continue  # the conjugate partner: the same mode
        seen.append(value)
        ls = ["-", "--", "-.", ":"][len(seen) % 4 - 1]
        colour_ = KIND_COLOURS.get(kind, "0.3")
        if abs(value.imag) <= scale:
            d = np.real(vec[[i, j], k])
            if not np.any(d):
                continue  # the mode does not move these two couplings
            d = d * np.min(reach[d != 0] / np.abs(d[d != 0]))
            ax.plot([fp[0] - d[0], fp[0] + d[0]], [fp[1] - d[1], fp[1] + d[1]], color=colour_, ls=ls, lw=1.3,
                    zorder=4, label=f"λ = {_fmt_eigenvalue(value)} ({kind})")
            drawn.append(np.array([fp - d, fp + d]))
            continue
        v = vec[[i, j], k] if value.imag > 0 else np.conj(vec[[i, j], k])  # the half that turns by +arg λ
        theta = np.linspace(0, 2 * np.pi, 181)
        ring = np.real(np.exp(1j * theta)[:, None] * v[None, :])  # Re(e^{iθ} v), θ increasing = the map's sense
        extent = np.abs(ring).max(0)
        if not np.any(extent > 1e-12 * np.abs(v).max()):
            continue  # the rotation does not move these two couplings
        ring = ring * np.min(reach[extent > 0] / extent[extent > 0])
        turn = np.degrees(abs(np.angle(value)))
        ax.plot(fp[0] + ring[:, 0], fp[1] + ring[:, 1], color=colour_, ls=ls, lw=1.1, zorder=4,
                label=f"λ = {_fmt_eigenvalue(value)} ({kind}), a rotation: {turn:.3g}° per level")
        top = int(np.argmax(ring[:-1, 1]))  # the arrowhead at the top of the ellipse, pointing the way it turns
        ax.annotate("", xy=fp + ring[top], xytext=fp + ring[(top - 6) % 180], zorder=4,
                    arrowprops={"arrowstyle": "-|>", "color": colour_, "lw": 1.1, "mutation_scale": 9})
        drawn.append(fp + ring)
    return np.concatenate(drawn)


def _coupling_vs_level(runs: xr.DataArray, values: np.ndarray, name: str, lin, ax):
    level = np.asarray(runs["level"].values)
    for r, run in enumerate(values[..., 0]):
        ax.plot(level, run, color=colour(r) if values.shape[0] <= len(OKABE_ITO) else OKABE_ITO["blue"],
                marker="o", ms=2, lw=0.8)
    if lin is not None:
        fp = float(np.real(lin["fixed_point"].values[0]))
        ax.axhline(fp, color=OKABE_ITO["black"], ls="--", lw=0.8, label=f"fixed point g* = {fp:.4g}")
    ax.set_xticks(level)
    return finish(ax, "level", coupling_label(name), title="coupling flow", legend=True)
