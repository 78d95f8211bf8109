"""The phase family: the measured transfer gap on the (swaps, noise) grid of tasks, and how well predictors rank it.

The phase family (``scripts/phase_family.toml``) is a grid of MNIST-1D tasks: ``swaps`` disjoint pairs of input
positions exchanged x ``corr_noise_scale``. Its derived files (``scripts/phase_derive.py``, ``data/phase/``) hold
the transfer matrix (``transfer.nc``) with the grid coordinates of every task as ``source_swaps``,
``source_noise``, ``target_swaps``, ``target_noise``, and the pre-registered analysis (``universality.nc``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
    interval,
    marker,
    new_axes,
    new_figure,
    styled,
)

GRID_COORDS = ("swaps", "noise")
#: Arrow line widths (points) for the smallest and the largest direction asymmetry of a figure.
ARROW_WIDTH = (0.5, 2.8)
ARROW_CMAP = "Greys"
#: Colour of each predictor kind of ``universality.nc`` (``predictor_kind``) when no roles are given.
KIND_COLOURS = {"signature": colour(0), "class": colour(2), "baseline": colour(1)}
#: Roles of :func:`score_intervals` drawn in grey.
MUTED_ROLES = ("exploratory", "other")


# ---- reading the transfer file -------------------------------------------------------------------------------------

def gap_field(transfer: xr.Dataset, level: int | None = None) -> xr.DataArray:
    """The measured gap per ``(source, target)`` pair, in accuracy units: at ``level`` the mean over seeds of
    ``gap_seed`` (or ``gap`` when the file has no ``gap_seed``), or ``gap_range`` (the mean over the pruned
    levels) when ``level`` is None. NaN where the pair was not measured."""
    if level is None:
        if "gap_range" not in transfer:
            raise ConfigError("The transfer file has no gap_range; pass a level (one of its 'level' values).")
        field = transfer["gap_range"]
    else:
        if "level" not in transfer.dims or level not in transfer["level"].values:
            levels = transfer["level"].values.tolist() if "level" in transfer.coords else []
            raise ConfigError(f"Level {level} is not in the transfer file; it has levels {levels}.")
        if "gap_seed" in transfer:
            field = transfer["gap_seed"].sel(level=level).mean("seed", skipna=True)
        elif "gap" in transfer:
            field = transfer["gap"].sel(level=level)
        else:
            raise ConfigError("The transfer file has neither gap_seed nor gap.")
    return field.transpose("source", "target").astype(float)


def incoming_gap(transfer: xr.Dataset, level: int | None = None) -> xr.DataArray:
    """Per target task, the mean gap of the transfers into it over its measured sources (its own ticket, the
    diagonal, left out); NaN for a task no other task was transferred to."""
    field = gap_field(transfer, level)
    own = field["source"].values[:, None] == field["target"].values[None, :]
    return field.where(~xr.DataArray(own, dims=("source", "target"))).mean("source", skipna=True)


def grid_cells(transfer: xr.Dataset) -> tuple[dict[str, tuple[int, int]], np.ndarray, np.ndarray]:
    """``task -> (column, row)`` on the grid (columns: swaps, rows: noise, both sorted), and the values of each."""
    need = [f"{side}_{c}" for side in ("source", "target") for c in GRID_COORDS]
    missing = [c for c in need if c not in transfer.coords and c not in transfer]
    if missing:
        raise ConfigError(f"The transfer file has no grid coordinates {missing}; the phase diagram needs a file of "
                          "scripts/phase_derive.py (coords source_swaps, source_noise, target_swaps, target_noise).")
    where: dict[str, tuple[float, float]] = {}
    for side in ("source", "target"):
        for task, s, n in zip(transfer[side].values, transfer[f"{side}_swaps"].values,
                              transfer[f"{side}_noise"].values):
            where[str(task)] = (float(s), float(n))
    swaps = np.unique([s for s, _ in where.values()])
    noise = np.unique([n for _, n in where.values()])
    cells = {t: (int(np.searchsorted(swaps, s)), int(np.searchsorted(noise, n))) for t, (s, n) in where.items()}
    if len(set(cells.values())) < len(cells):
        raise ConfigError("Two tasks of the transfer file sit on the same (swaps, noise) grid cell.")
    return cells, swaps, noise


def _symmetric_max(values) -> float:
    v = np.abs(np.asarray(values, dtype=float))
    return float(np.nanmax(v, initial=0)) if np.isfinite(v).any() else 0.0


def asymmetries(transfer: xr.Dataset, level: int | None = None) -> list[tuple[str, str, float]]:
    """``(a, b, gap(a -> b) - gap(b -> a))`` for every pair of grid-neighbour tasks measured both ways, with
    ``a -> b`` the better direction (the difference >= 0), in accuracy units."""
    field = gap_field(transfer, level)
    cells, _, _ = grid_cells(transfer)
    sources, targets = [str(s) for s in field["source"].values], [str(t) for t in field["target"].values]
    values = field.values
    out = []
    for i, a in enumerate(sources):
        for b in sources[i + 1:]:
            (xa, ya), (xb, yb) = cells[a], cells[b]
            if abs(xa - xb) + abs(ya - yb) != 1 or a not in targets or b not in targets:
                continue
            ab, ba = values[i, targets.index(b)], values[sources.index(b), targets.index(a)]
            if np.isfinite(ab) and np.isfinite(ba):
                out.append((a, b, float(ab - ba)) if ab >= ba else (b, a, float(ba - ab)))
    return out


def _tick(v: float) -> str:
    return f"{v:g}"


# ---- figures ---------------------------------------------------------------------------------------------------------

@styled
def phase_diagram(transfer: xr.Dataset, level: int | None = None, classes: xr.DataArray | None = None, ax=None, *,
                  norm=None, arrow_max: float | None = None, colorbar: bool = True, annotate: bool = True,
                  legend: bool = True, title: str | None = None):
    """The measured gap field on the (swaps, noise) grid of the phase family.

    Parameters
    ----------
    transfer : xr.Dataset
        ``transfer.nc`` of ``scripts/phase_derive.py``: ``gap_seed (source, target, seed, level)`` or
        ``gap (source, target, level)``, ``gap_range (source, target)``, and the grid coordinates
        ``source_swaps``, ``source_noise``, ``target_swaps``, ``target_noise``.
    level : int, optional
        IMP level whose gap (mean over seeds) is shown; None: ``gap_range``, the mean over the pruned levels.
    classes : xr.DataArray, optional
        Predicted class per task (dim ``task``, e.g. ``universality.class_id.sel(signature="dmd_ticket")``): a
        marker per class in each cell's corner, and black dashed lines between neighbouring cells of different
        classes (the region boundaries).
    ax : matplotlib Axes, optional
    norm : matplotlib Normalize, optional
        Colour scale in points (default symmetric about 0 over this field); shared by :func:`phase_panels`.
    arrow_max : float, optional
        Asymmetry (points) drawn with the widest, darkest arrow (default the largest of this field).
    colorbar, annotate, legend : bool
        Draw a colour bar; write each cell's value and task; draw the legend (classes, arrow widths) below.
    title : str, optional
        Default: the level and its density, or "gap over the pruned levels".

    Returns
    -------
    matplotlib Axes
        Each task is a cell at its (swaps, noise) position, coloured by the mean gap of the transfers into it
        (over its measured sources; transferred minus the target's own ticket, same seed and level, in points):
        blue, tickets from elsewhere do better than its own; red, worse. Grey hatched cells: grid points
        without a task or without incoming transfers. An arrow across the border of two neighbouring cells
        measured both ways points in the direction of the better transfer; its width and darkness grow with
        ``|gap(a -> b) - gap(b -> a)|``. The QuadMesh has gid ``"gap"``, each arrow (an Annotation from ``xyann``
        to ``xy``) gid ``"a->b"``.
    """
    ax, handles = _diagram(transfer, level, classes, ax, norm, arrow_max, colorbar, annotate, title)
    if legend and handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=min(len(handles), 3),
                  fontsize=6, handlelength=1.6, columnspacing=1.0, borderaxespad=0)
    return ax


def _diagram(transfer, level, classes, ax, norm, arrow_max, colorbar, annotate, title):
    """:func:`phase_diagram` without its legend: the Axes and the legend handles (classes, then arrow widths)."""
    cells, swaps, noise = grid_cells(transfer)
    into = incoming_gap(transfer, level)
    grid = np.full((len(noise), len(swaps)), np.nan)
    for task, value in zip(into["target"].values, into.values):
        x, y = cells[str(task)]
        grid[y, x] = 100 * value
    asym = [(a, b, 100 * d) for a, b, d in asymmetries(transfer, level)]
    if norm is None:
        vmax = _symmetric_max(grid) or 1.0
        norm = mpl.colors.Normalize(-vmax, vmax)
    if arrow_max is None:
        arrow_max = max((d for *_, d in asym), default=0.0)

    ax = new_axes(ax, (COLUMN + 0.5, COLUMN + 0.3))
    for y in range(len(noise)):  # cells without a value: grey, hatched
        for x in range(len(swaps)):
            if not np.isfinite(grid[y, x]):
                ax.add_patch(mpl.patches.Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor="0.92", hatch="////",
                                                   ec="0.75", lw=0, zorder=0))
    mesh = ax.pcolormesh(np.arange(len(swaps) + 1) - 0.5, np.arange(len(noise) + 1) - 0.5,
                         np.ma.masked_invalid(grid), cmap=DIVERGING, norm=norm, edgecolors="white", linewidth=0.8,
                         zorder=1)
    mesh.set_gid("gap")
    if annotate:
        vmax = max(abs(norm.vmin), abs(norm.vmax))
        for task, (x, y) in cells.items():
            v = grid[y, x]
            dark = np.isfinite(v) and abs(v) > 0.6 * vmax
            ax.text(x, y + 0.17, f"{v:+.1f}" if np.isfinite(v) else "n/a", ha="center", va="center", fontsize=6.5,
                    zorder=4, color="white" if dark else "black", gid="value")
            ax.text(x, y - 0.22, task, ha="center", va="center", fontsize=5, zorder=4,
                    color="white" if dark else "0.3", gid="task")
    handles = _classes(ax, classes, cells) if classes is not None else []
    handles += _arrows(ax, asym, cells, arrow_max)

    ax.set_xticks(range(len(swaps)), [_tick(s) for s in swaps])
    ax.set_yticks(range(len(noise)), [_tick(n) for n in noise])
    ax.set_xlim(-0.5, len(swaps) - 0.5)
    ax.set_ylim(-0.5, len(noise) - 0.5)
    ax.set_aspect("equal")
    ax.tick_params(length=0)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    if colorbar:
        bar = ax.figure.colorbar(mesh, ax=ax, shrink=0.8, pad=0.03)
        bar.set_label("mean gap into the task (points)")
        bar.ax.tick_params(labelsize=mpl.rcParams["ytick.labelsize"])
    if title is None:
        title = "gap over the pruned levels" if level is None else _level_title(transfer, level)
    return finish(ax, "input pairs swapped", "correlated noise", title=title), handles


def _arrows(ax, asym, cells, arrow_max: float) -> list:
    cmap = mpl.colormaps[ARROW_CMAP]
    lo, hi = ARROW_WIDTH
    for a, b, d in asym:
        (xa, ya), (xb, yb) = cells[a], cells[b]
        mid, step = np.array([(xa + xb) / 2, (ya + yb) / 2]), np.array([xb - xa, yb - ya], dtype=float)
        share = min(d / arrow_max, 1.0) if arrow_max > 0 else 0.0
        width = lo + (hi - lo) * share
        ax.annotate("", xy=tuple(mid + 0.17 * step), xytext=tuple(mid - 0.17 * step), zorder=5,
                    arrowprops={"arrowstyle": f"-|>,head_length={0.25 + 0.1 * width:.2f},"
                                              f"head_width={0.12 + 0.06 * width:.2f}",
                                "lw": width, "color": cmap(0.45 + 0.55 * share), "shrinkA": 0, "shrinkB": 0},
                    ).set_gid(f"{a}->{b}")
    if not asym or arrow_max <= 0:
        return []
    return [mpl.lines.Line2D([], [], color=cmap(0.45 + 0.55 * s), lw=lo + (hi - lo) * s,
                             label=f"asymmetry {s * arrow_max:.1f} points") for s in (0.25, 1.0)]


def _classes(ax, classes: xr.DataArray, cells) -> list:
    if "task" not in classes.dims:
        raise ConfigError(f"classes must have a 'task' dim (e.g. universality.class_id.sel(signature=...)), got "
                          f"dims {classes.dims}.")
    of = {str(t): c.item() for t, c in zip(classes["task"].values, classes)}
    of = {t: c for t, c in of.items() if t in cells and not (isinstance(c, float) and np.isnan(c))}
    handles = []
    for k, name in enumerate(sorted(set(of.values()))):
        xy = np.array([cells[t] for t, c in of.items() if c == name], dtype=float)
        handles.append(ax.scatter(xy[:, 0] - 0.36, xy[:, 1] + 0.36, s=14, marker=marker(k), color=colour(k),
                                  edgecolors="black", linewidths=0.5, zorder=6, label=f"predicted class {name}",
                                  gid="class"))
    at = {cells[t]: c for t, c in of.items()}
    segments = []
    for (x, y), c in at.items():
        for dx, dy in ((1, 0), (0, 1)):
            other = at.get((x + dx, y + dy))
            if other is not None and other != c:   # border between two cells of different classes
                segments.append([(x + 0.5, y - 0.5), (x + 0.5, y + 0.5)] if dx else
                                [(x - 0.5, y + 0.5), (x + 0.5, y + 0.5)])
    if segments:
        ax.add_collection(mpl.collections.LineCollection(segments, colors="black", linewidths=1.6,
                                                         linestyles=(0, (3, 1.5)), zorder=3, gid="class border"))
        handles.append(mpl.lines.Line2D([], [], color="black", lw=1.6, ls=(0, (3, 1.5)), label="class border"))
    return handles


def _level_title(transfer: xr.Dataset, level: int) -> str:
    if "density" in transfer and "level" in transfer["density"].dims:
        d = float(np.nanmean(np.asarray(transfer["density"].sel(level=level).values, dtype=float)))
        if np.isfinite(d):
            return f"level {level} ({100 * d:.3g}% weights)"
    return f"level {level}"


@styled
def phase_panels(transfer: xr.Dataset, levels: Sequence[int] = (2, 4, 6, 8), classes: xr.DataArray | None = None):
    """:func:`phase_diagram` at each of ``levels``, one panel each, on one colour scale and one arrow scale.

    Returns
    -------
    matplotlib Figure
        One panel per level (titled with the level and its density in percent; two columns for four levels,
        else up to three), one colour bar and one legend for all.
    """
    levels = list(levels)
    if not levels:
        raise ConfigError("phase_panels needs at least one level.")
    fields = [100 * incoming_gap(transfer, lv).values for lv in levels]
    vmax = max(_symmetric_max(f) for f in fields) or 1.0
    norm = mpl.colors.Normalize(-vmax, vmax)
    arrow_max = max((100 * d for lv in levels for *_, d in asymmetries(transfer, lv)), default=0.0)
    n = len(levels)
    ncols = min(n, 2 if n == 4 else 3)
    nrows = -(-n // ncols)
    width = min(PAGE, 0.6 + 2.9 * ncols)
    fig, axes = new_figure(nrows, ncols, (width, 0.8 + 2.75 * nrows))
    flat = list(axes.ravel())
    handles = []
    for k, (ax, lv) in enumerate(zip(flat, levels)):
        _, handles = _diagram(transfer, lv, classes, ax, norm, arrow_max, False, True, None)
        if k % ncols:
            ax.set_ylabel("")
        if k < n - ncols:
            ax.set_xlabel("")
    for ax in flat[n:]:
        ax.set_axis_off()
    bar = fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=DIVERGING), ax=flat, shrink=0.6, pad=0.02)
    bar.set_label("mean gap into the task: transferred − own ticket (points)")
    bar.ax.tick_params(labelsize=mpl.rcParams["ytick.labelsize"])
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), fontsize=6,
                   handlelength=1.6)
    return fig


@styled
def predicted_vs_measured(universality: xr.Dataset, predictor: str, transfer: xr.Dataset | None = None, ax=None):
    """A predictor's score against the measured gap, one point per measured off-diagonal pair.

    Parameters
    ----------
    universality : xr.Dataset
        ``universality.nc``: ``score (predictor, source, target)``, the measured ``gap (source, target)``
        (of the gap seeds; what ``tau_w`` is computed against), ``tau_w`` and ``tau_task_ci (predictor, bound)``.
    predictor : str
        One of ``universality.predictor``.
    transfer : xr.Dataset, optional
        ``transfer.nc``: vertical intervals from its ``gap_range_ci``, and points coloured by its
        ``transfer_verdict``; give the gap seeds' ones (``gap_range_ci_half``, ``verdict_half`` of that half) so
        that they belong to the gap plotted.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        Pairs whose score is NaN are left out (the title counts them). The two directions of a pair with the same
        score (symmetric predictors) are moved 1% of the score range apart, ``a -> b`` (a < b) to the left.
        Points carry gid ``"pairs"``, intervals gid
        ``"interval"``.
    """
    if predictor not in universality["predictor"].values:
        raise ConfigError(f"Predictor {predictor!r} is not in the file; choose one of "
                          f"{universality['predictor'].values.tolist()}.")
    score = universality["score"].sel(predictor=predictor).transpose("source", "target")
    gap = universality["gap"].transpose("source", "target")
    score, gap = xr.align(score, gap, join="inner")
    s, g = np.asarray(score.values, dtype=float), 100 * np.asarray(gap.values, dtype=float)
    sources, targets = [str(v) for v in score["source"].values], [str(v) for v in score["target"].values]
    off = np.array(sources)[:, None] != np.array(targets)[None, :]
    measured = off & np.isfinite(g)
    shown = measured & np.isfinite(s)
    ax = new_axes(ax, (COLUMN, COLUMN * 0.85 + (0.35 if transfer is not None else 0)))
    ax.axhline(0, color="0.6", lw=0.8, zorder=0)
    rows, cols = np.nonzero(shown)
    x = _dodge(s, shown, sources, targets)
    intervals = []
    if transfer is not None and "gap_range_ci" in transfer:
        ci = 100 * transfer["gap_range_ci"]
        for r, c in zip(rows, cols):
            try:
                lo, hi = _bounds(ci.sel(source=sources[r], target=targets[c]))
            except KeyError:   # a pair the transfer file does not hold
                continue
            intervals += interval(ax, x[r, c], lo, hi, "0.55", zorder=2)
    groups = [("measured pairs", np.ones(rows.size, bool), colour(0))]
    if transfer is not None and "transfer_verdict" in transfer:
        verdict = transfer["transfer_verdict"]
        v = np.array([_item(verdict, sources[r], targets[c]) for r, c in zip(rows, cols)])
        groups = [(name, v == code, col) for code, name, col in
                  ((1, "transfers", colour(0)), (0, "does not", colour(1)), (-1, "undecided", "0.5"))]
        groups.append(("no verdict", ~np.isin(v, [1, 0, -1]), "0.8"))
    for name, which, col in groups:
        if which.any():
            ax.scatter(x[rows[which], cols[which]], g[rows[which], cols[which]], s=14, color=col,
                       edgecolors="black", linewidths=0.4, zorder=3, label=name, gid="pairs")
    tau = float(universality["tau_w"].sel(predictor=predictor)) if "tau_w" in universality else np.nan
    title = f"{predictor}\nτ_w = {tau:.2f}" if np.isfinite(tau) else f"{predictor}\nτ_w n/a"
    if "tau_task_ci" in universality:
        lo, hi = _bounds(universality["tau_task_ci"].sel(predictor=predictor))
        if np.isfinite(lo) and np.isfinite(hi):
            title += f" [{lo:.2f}, {hi:.2f}]"
    dropped = int((measured & ~shown).sum())
    if dropped:
        title += f"; {dropped} pairs without a score"
    ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(5))
    finish(ax, "predicted score (higher: predicted to transfer)", "measured gap, gap seeds (points)", title=title)
    handles = ax.get_legend_handles_labels()[0]
    if intervals:
        handles.append(mpl.lines.Line2D([], [], color="0.55", lw=0.9, marker="_", ms=5,
                                        label="95% interval of the gap"))
    if len(handles) > 1:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=6,
                  handletextpad=0.3, columnspacing=1.0, borderaxespad=0)
    return ax


def _dodge(score: np.ndarray, shown: np.ndarray, sources: list[str], targets: list[str],
           share: float = 0.01) -> np.ndarray:
    """x positions of the pairs: the score, moved ``share`` of the score range left (``a -> b``, a < b) or right
    (``b -> a``) where both directions are shown with the same score (a symmetric distance), so that their
    intervals do not overlap."""
    x = score.astype(float).copy()
    span = float(np.ptp(score[shown])) if shown.any() else 0.0
    span = span or 1.0
    for r, c in zip(*np.nonzero(shown)):
        a, b = sources[r], targets[c]
        if b in sources and a in targets:
            rr, cc = sources.index(b), targets.index(a)
            if shown[rr, cc] and score[rr, cc] == score[r, c]:
                x[r, c] += share * span * (-1 if a < b else 1)
    return x


def _bounds(ci: xr.DataArray) -> tuple[float, float]:
    """Lower and upper end of an interval with a 2-long ``bound`` dim, whatever its labels (``lower``/``upper``
    in universality.nc, ``low``/``high`` in transfer.nc); NaN, NaN unless both are finite."""
    v = np.asarray(ci.values, dtype=float).ravel()
    if v.size != 2 or not np.isfinite(v).all():
        return np.nan, np.nan
    return float(v.min()), float(v.max())


def _item(da: xr.DataArray, source: str, target: str) -> float:
    try:
        return float(da.sel(source=source, target=target))
    except KeyError:
        return np.nan


@styled
def score_intervals(universality: xr.Dataset, predictors: Sequence[str] | None = None,
                    roles: Mapping[str, str] | None = None, ax=None):
    """``tau_w`` of each predictor with its interval over tasks, one row each.

    Parameters
    ----------
    universality : xr.Dataset
        ``universality.nc``: ``tau_w (predictor)``, ``tau_task_ci (predictor, bound)``, ``predictor_kind``.
    predictors : sequence of str, optional
        Rows, top to bottom (default every predictor with a finite ``tau_w``: in the file's order, or with
        ``roles`` grouped by role in the order the roles first appear in it).
    roles : mapping, optional
        ``predictor -> role`` (e.g. "primary", "pre-registered baseline", "exploratory"): the colour and legend
        (predictors without a role: "other"; "exploratory" and "other" in grey); default the
        ``predictor_kind``.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        A point at ``tau_w`` and a horizontal line over its interval per row (gid ``"interval"``); a predictor
        whose ``tau_w`` is NaN (a constant score makes no prediction) reads "n/a". The line at 0: no ranking.
    """
    names = [str(p) for p in universality["predictor"].values]
    tau = universality["tau_w"]
    if predictors is None:
        predictors = [p for p in names if np.isfinite(float(tau.sel(predictor=p)))]
        if not predictors:
            raise ConfigError("No predictor of the file has a finite tau_w; pass predictors= to list them anyway.")
        if roles is not None:
            rank = {r: i for i, r in enumerate(dict.fromkeys(roles.values()))}
            predictors.sort(key=lambda p: rank.get(roles.get(p), len(rank)))   # stable: file order within a role
    predictors = [str(p) for p in predictors]
    unknown = [p for p in predictors if p not in names]
    if unknown:
        raise ConfigError(f"Predictors {unknown} are not in the file; it has {names}.")
    if roles is not None:
        role = {p: roles.get(p, "other") for p in predictors}
    elif "predictor_kind" in universality:
        role = {p: str(universality["predictor_kind"].sel(predictor=p).item()) for p in predictors}
    else:
        role = dict.fromkeys(predictors, "predictor")
    order = [r for r in dict.fromkeys(role.values()) if roles is None or r not in MUTED_ROLES]
    palette = {r: (KIND_COLOURS.get(r, colour(i)) if roles is None else colour(i)) for i, r in enumerate(order)}
    palette |= {r: "0.55" for r in MUTED_ROLES}
    n = len(predictors)
    ax = new_axes(ax, (COLUMN + 0.8, 0.9 + 0.17 * n))
    ax.axvline(0, color="0.6", lw=0.8, zorder=0)
    ci = universality["tau_task_ci"] if "tau_task_ci" in universality else None
    seen = set()
    for k, p in enumerate(predictors):
        y = n - 1 - k
        c = palette[role[p]]
        if ci is not None:
            lo, hi = _bounds(ci.sel(predictor=p))
            interval(ax, y, lo, hi, c, vertical=False)
        t = float(tau.sel(predictor=p))
        if np.isfinite(t):
            label = role[p] if role[p] not in seen else None
            seen.add(role[p])
            ax.plot([t], [y], "o", color=c, ms=4, mec="black", mew=0.4, zorder=3, label=label, gid="tau")
        else:
            ax.text(0.02, y, "n/a", ha="left", va="center", fontsize=6, color="0.4", zorder=3)
    ax.set_yticks(range(n), predictors[::-1])
    ax.set_ylim(-0.7, n - 0.3)
    ax.tick_params(axis="y", length=0)
    finish(ax, "τ_w: score vs measured gap", title="ranking the sources of each target")
    if seen:
        ax.legend(loc="lower left", bbox_to_anchor=(1.0, 0.0), borderaxespad=0.3)
    return ax
