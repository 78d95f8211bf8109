"""Transfer: the measured transfer matrix, universality classes as a graph, and ROC curves of predictors."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib as mpl
import numpy as np
import xarray as xr

from rgnet.errors import ConfigError
from rgnet.plot._style import (
    COLUMN,
    DIVERGING,
    PAGE,
    colour,
    finish,
    finish_density_panel,
    new_axes,
    new_figure,
    styled,
)

YES, NO, UNDECIDED = "✓", "✗", "?"
VALUE_LABELS = {"gap_range": "paired gap: transferred − own ticket",
                "gap_at_winning": "transferred − own ticket", "vs_random_at_winning": "transferred − random mask"}


def _label(name, labels: Mapping[str, str] | None) -> str:
    return (labels or {}).get(str(name), str(name))


@styled
def transfer_matrix(matrix: xr.Dataset, value: str | None = None, labels: Mapping[str, str] | None = None,
                    ax=None):
    """Heatmap of the transfer experiment: rows = source task of the ticket, columns = target task.

    Parameters
    ----------
    matrix : xr.Dataset
        Output of :func:`rgnet.transfer_matrix` (dims ``source, target``).
    value : str
        ``(source, target)`` variable coloured, in points (default ``gap_range``: transferred minus the target's
        own ticket, same seed and level, averaged over the pruned levels, or ``gap_at_winning`` in files written
        before it: at the target's winning level; ``vs_random_at_winning``: minus a random mask there).
    labels : mapping, optional
        Short names for task labels (``{"mnist1d(shuffle_seq=true)": "shuffled"}``).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        Each cell shows the value and the verdict of the matrix's rule (``✓`` the ticket transfers, ``✗`` it
        does not, ``?`` undecided); grey hatched cells have no comparable level or no transfer run. The diagonal
        (a task's own ticket) is outlined.
    """
    if value is None:
        value = "gap_range" if "gap_range" in matrix else "gap_at_winning"
    if value not in matrix or set(matrix[value].dims) != {"source", "target"}:
        choices = [k for k, v in matrix.data_vars.items() if set(v.dims) == {"source", "target"}]
        raise ConfigError(f"{value!r} is not a (source, target) variable of the transfer matrix; choose one of "
                          f"{choices}.")
    data = 100 * np.asarray(matrix[value].transpose("source", "target").values, dtype=float)
    if "transfer_verdict" in matrix:   # 1 / 0 / -1 undecided / -2 not run
        verdict = np.asarray(matrix["transfer_verdict"].transpose("source", "target").values, dtype=float)
        verdict[verdict == -2] = np.nan
    elif "transfers" in matrix:
        verdict = np.asarray(matrix["transfers"].transpose("source", "target").values, dtype=float)
    else:
        verdict = np.full(data.shape, np.nan)
    sources, targets = [str(s) for s in matrix["source"].values], [str(t) for t in matrix["target"].values]
    ax = new_axes(ax, (COLUMN + 0.6, COLUMN))
    vmax = float(np.nanmax(np.abs(data), initial=0)) or 1.0
    ax.set_facecolor("0.92")
    image = ax.imshow(np.ma.masked_invalid(data), cmap=DIVERGING, vmin=-vmax, vmax=vmax, aspect="equal")
    for r in range(len(sources)):
        for c in range(len(targets)):
            if not np.isfinite(data[r, c]):
                ax.add_patch(mpl.patches.Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, hatch="////",
                                                   ec="0.7", lw=0))
            if sources[r] == targets[c]:
                ax.add_patch(mpl.patches.Rectangle((c - 0.48, r - 0.48), 0.96, 0.96, fill=False, ec="black", lw=1.0))
            mark = "" if np.isnan(verdict[r, c]) else {1: YES, 0: NO, -1: UNDECIDED}[int(verdict[r, c])]
            number = "n/a" if not np.isfinite(data[r, c]) else f"{data[r, c]:+.1f}"
            text = "\n".join(s for s in (number, mark) if s)
            dark = np.isfinite(data[r, c]) and abs(data[r, c]) > 0.6 * vmax
            ax.text(c, r, text, ha="center", va="center", fontsize=6.5, color="white" if dark else "black")
    ax.set_xticks(range(len(targets)), [_label(t, labels) for t in targets], rotation=35, ha="right")
    ax.set_yticks(range(len(sources)), [_label(s, labels) for s in sources])
    ax.tick_params(length=0)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    bar = ax.figure.colorbar(image, ax=ax, shrink=0.8, pad=0.02)
    bar.set_label(f"{VALUE_LABELS.get(value, value)} (points)")
    bar.ax.tick_params(labelsize=mpl.rcParams["ytick.labelsize"])
    return finish(ax, "target task (ticket retrained on)", "source task (ticket found on)",
                  title=f"transfer matrix ({YES} transfers, {NO} does not, {UNDECIDED} undecided)")


@styled
def class_graph(graph, class_attr: str = "class", weight_attr: str = "weight", pos: Mapping | None = None,
                labels: Mapping[str, str] | None = None, ax=None):
    """A universality-class graph: tasks as nodes coloured by class, edges as thick as their weight.

    Parameters
    ----------
    graph : networkx.Graph
        Nodes are tasks; node attribute ``class_attr`` names the class (default: connected components);
        edge attribute ``weight_attr`` (e.g. a similarity) sets the line width.
    class_attr, weight_attr : str
        Attribute names.
    pos : mapping, optional
        Node positions (default a circular layout, deterministic).
    labels : mapping, optional
        Short names for the nodes.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    import networkx as nx  # noqa: PLC0415

    if graph.number_of_nodes() == 0:
        raise ConfigError("The class graph has no nodes.")
    classes = nx.get_node_attributes(graph, class_attr)
    if len(classes) < graph.number_of_nodes():
        classes = {n: k for k, comp in enumerate(nx.connected_components(nx.Graph(graph))) for n in comp}
    names = list(dict.fromkeys(classes[n] for n in graph.nodes))
    ax = new_axes(ax, (COLUMN, COLUMN * 0.85))
    pos = dict(pos) if pos is not None else nx.circular_layout(graph)
    weights = np.array([float(d.get(weight_attr, 1.0)) for *_, d in graph.edges(data=True)])
    if weights.size:
        span = np.ptp(weights)
        widths = 0.6 + 2.4 * ((weights - weights.min()) / span if span > 0 else np.ones_like(weights))
        nx.draw_networkx_edges(graph, pos, ax=ax, width=widths, edge_color="0.55")
    for k, name in enumerate(names):
        nodes = [n for n in graph.nodes if classes[n] == name]
        nx.draw_networkx_nodes(graph, pos, nodelist=nodes, node_color=colour(k), node_size=260, ax=ax,
                               edgecolors="black", linewidths=0.5, label=f"class {name}")
    xy = np.array(list(pos.values()), dtype=float)
    lift = 0.09 * max(float(np.ptp(xy[:, 1])), 1e-9)  # labels above the nodes, not on them
    above = {n: (p[0], p[1] + lift) for n, p in pos.items()}
    nx.draw_networkx_labels(graph, above, labels={n: _label(n, labels) for n in graph.nodes}, font_size=6.5, ax=ax,
                            verticalalignment="bottom")
    ax.margins(0.22)
    ax.set_axis_off()
    finish(ax, title="universality classes")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), scatterpoints=1, markerscale=0.5)
    return ax


def roc_curve(score, label) -> tuple[np.ndarray, np.ndarray, float]:
    """ROC curve of a score predicting a binary label (higher score = predicted positive).

    Pairs where either is NaN are dropped; tied scores form one step (a diagonal segment).

    Returns
    -------
    fpr, tpr : ndarray
        False- and true-positive rates from (0, 0) to (1, 1).
    auc : float
        Area under the curve (equals the Mann-Whitney U / (n_pos n_neg), ties counted half).
    """
    s, y = np.asarray(score, dtype=float).ravel(), np.asarray(label, dtype=float).ravel()
    if s.shape != y.shape:
        raise ConfigError(f"Scores ({s.size}) and labels ({y.size}) must have the same size.")
    ok = np.isfinite(s) & np.isfinite(y)
    s, y = s[ok], y[ok] > 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ConfigError(f"A ROC curve needs positive and negative labels, got {n_pos} positive and {n_neg} "
                          "negative (after dropping NaN); check the labels.")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # last index of each group of tied scores
    tpr = np.r_[0.0, np.cumsum(y)[last] / n_pos]
    fpr = np.r_[0.0, np.cumsum(~y)[last] / n_neg]
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    return fpr, tpr, auc


@styled
def roc(scores: Mapping, labels, ax=None):
    """ROC curves of transfer predictors, with their AUC.

    Parameters
    ----------
    scores : mapping
        ``predictor name -> scores`` (arrays, or DataArrays aligned with ``labels`` by their coordinates, e.g.
        ``(source, target)``); a higher score must predict a positive label (pass ``-distance`` for distances).
    labels : array or DataArray
        Binary outcomes (e.g. ``rgnet.transfer_matrix(...).transfers``; NaN = not measured, dropped).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    if not scores:
        raise ConfigError("roc needs at least one predictor in scores.")
    ax = new_axes(ax, (COLUMN, COLUMN * 0.9))
    ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=0.8, label="chance (AUC 0.5)")
    for k, (name, score) in enumerate(scores.items()):
        if isinstance(score, xr.DataArray) and isinstance(labels, xr.DataArray):
            score, lab = xr.align(score, labels, join="inner")
            lab = lab.transpose(*score.dims)
        else:
            lab = labels
        fpr, tpr, auc = roc_curve(score, lab)
        ax.plot(fpr, tpr, color=colour(k), lw=1.4, drawstyle="default", label=f"{name} (AUC {auc:.2f})")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    finish(ax, "false-positive rate", "true-positive rate", title="predicted vs measured transfer")
    ax.legend(loc="lower right")
    return ax


#: Line style and label of each alignment mode of a transfer (``rgnet transfer --align``).
ALIGN_STYLES = {"none": ("--", "unaligned"), "aligned inputs": ("-", "aligned inputs"),
                "aligned inputs+units": (":", "aligned inputs + units")}


def aligned_pairs(matrix: xr.Dataset) -> dict[tuple[str, str], dict[str, str]]:
    """``(source, target) -> {mode: source label}`` for every pair with an aligned transfer measured
    (``mode`` ``"none"`` is the unaligned transfer, if measured too)."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    gap = matrix["gap"]
    for label in (str(s) for s in matrix["source"].values):
        if " [" not in label:
            continue
        plain, mode = label.split(" [", 1)
        for target in (str(t) for t in matrix["target"].values):
            if plain == target or not np.isfinite(gap.sel(source=label, target=target).values).any():
                continue
            modes = out.setdefault((plain, target), {})
            if plain in matrix["source"].values and np.isfinite(gap.sel(source=plain, target=target).values).any():
                modes["none"] = plain
            modes[mode.rstrip("]")] = label
    return out


@styled
def aligned_transfer(matrix: xr.Dataset, labels: Mapping[str, str] | None = None):
    """Aligned vs unaligned transfer: gap to the target's own ticket vs density, one panel per pair.

    Parameters
    ----------
    matrix : xr.Dataset
        Output of :func:`rgnet.transfer_matrix` over files holding aligned transfers (sources labelled
        ``<source> [aligned inputs]``): ``gap``, ``gap_std``, ``transfer_matching (source, target, level)``,
        ``density (target, level)``, ``winning_density (target)``.
    labels : mapping, optional
        Short names for task labels.

    Returns
    -------
    matplotlib Figure
        Per alignment mode a line (mean gap over seeds) with a ± std band; filled markers: the transferred ticket
        is matching, open: it is not; the dotted line is the target's own winning-ticket density.
    """
    pairs = aligned_pairs(matrix)
    if not pairs:
        raise ConfigError("The transfer matrix holds no aligned transfer; record one with rgnet transfer --align.")
    n = len(pairs)
    fig, axes = new_figure(1, n, (min(PAGE, COLUMN * n) if n > 1 else COLUMN, 2.6), sharey=True)
    for ax, ((source, target), modes) in zip(axes[0], pairs.items()):
        density = np.asarray(matrix["density"].sel(target=target).values, dtype=float)
        ax.axhline(0, color="0.5", lw=0.8, zorder=0)
        for k, (mode, label) in enumerate(modes.items()):
            ls, name = ALIGN_STYLES.get(mode, ("-.", mode))
            gap = 100 * np.asarray(matrix["gap"].sel(source=label, target=target).values, dtype=float)
            std = 100 * np.nan_to_num(np.asarray(matrix["gap_std"].sel(source=label, target=target).values, float))
            match = np.asarray(matrix["transfer_matching"].sel(source=label, target=target).values, dtype=bool)
            ok = np.isfinite(gap) & np.isfinite(density)
            c = colour(k)
            ax.plot(density[ok], gap[ok], ls=ls, color=c, label=name, zorder=3)
            ax.fill_between(density[ok], (gap - std)[ok], (gap + std)[ok], color=c, alpha=0.15, lw=0, zorder=2)
            ax.scatter(density[ok & match], gap[ok & match], color=c, s=16, zorder=4)
            ax.scatter(density[ok & ~match], gap[ok & ~match], facecolors="white", edgecolors=c, s=16, zorder=4)
        if "winning_density" in matrix:
            w = float(matrix["winning_density"].sel(target=target))
            if np.isfinite(w):
                ax.axvline(w, color="0.3", ls=":", lw=0.9, label="target's own winning ticket")
        finish_density_panel(ax, axes[0, 0], density, "transferred − own ticket (points)",
                             f"{_label(source, labels)} → {_label(target, labels)}")
    axes[0, 0].legend(loc="lower left", title="filled: matching")
    return fig
