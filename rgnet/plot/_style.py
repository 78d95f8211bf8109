"""One style for every figure: two-column sizes, the Okabe-Ito palette, labelled log density axes."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import matplotlib as mpl
import numpy as np
from matplotlib import ticker

#: Okabe & Ito (2008) colour-blind-safe palette, in the order lines take it (yellow last: weak on white).
OKABE_ITO = {
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "green": "#009E73",
    "orange": "#E69F00",
    "purple": "#CC79A7",
    "sky": "#56B4E9",
    "black": "#000000",
    "yellow": "#F0E442",
}
PALETTE = list(OKABE_ITO.values())
MARKERS = ["o", "s", "^", "v", "D", "P", "X", "<", ">"]
#: Perceptually uniform, colour-blind-safe map for ordered things (IMP levels).
SEQUENTIAL = "viridis"
#: Diverging map centred on zero (gaps): blue above, red below; readable with red-green colour blindness.
DIVERGING = "RdBu"

#: Figure widths in inches: one column and the full page of a two-column paper.
COLUMN, PAGE = 3.4, 7.0

#: rcParams used while a figure function runs (``with rgnet.plot.style():`` applies them to your own plots).
STYLE = {
    "font.size": 8,
    "axes.labelsize": 8,
    "axes.titlesize": 8,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "image.cmap": SEQUENTIAL,
    "figure.dpi": 150,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
}
TICK_SIZE = STYLE["xtick.labelsize"]


def style():
    """Context manager applying :data:`STYLE` (``with rgnet.plot.style(): ...``)."""
    return mpl.rc_context(STYLE)


def styled(fn):
    """Run a figure function under :data:`STYLE`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with style():
            return fn(*args, **kwargs)

    return wrapper


def new_axes(ax=None, size: tuple[float, float] = (COLUMN, 2.5)):
    """``ax`` itself, or the Axes of a new constrained-layout figure of ``size`` inches."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt  # noqa: PLC0415  (pyplot only for new figures, so notebooks show them)

    return plt.subplots(figsize=size, layout="constrained")[1]


def new_figure(nrows: int, ncols: int, size: tuple[float, float], **kwargs):
    """A constrained-layout figure and its 2-D array of Axes."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt.subplots(nrows, ncols, figsize=size, layout="constrained", squeeze=False, **kwargs)


def finish(ax, xlabel: str | None = None, ylabel: str | None = None, title: str | None = None, legend: bool = False):
    """Labels, tick size (ticks are made lazily, after the style context has closed) and an optional legend."""
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    ax.tick_params(labelsize=TICK_SIZE)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend()
    return ax


def density_axis(ax, densities: Sequence[float], label: str = "weights remaining (%)") -> None:
    """Log density x axis, dense on the left, ticked at about every other IMP level in percent."""
    d = np.asarray(densities, dtype=float)
    d = np.unique(d[np.isfinite(d) & (d > 0)])[::-1]
    ax.set_xscale("log")
    ticks = []
    for v in d:  # keep ticks at least a factor 1.5 apart so the labels do not collide
        if not ticks or ticks[-1] / v >= 1.5:
            ticks.append(v)
    ax.xaxis.set_major_locator(ticker.FixedLocator(ticks))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{100 * v:.3g}"))
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    if d.size:
        lo, hi = d.min(), d.max()
        pad = (hi / lo) ** 0.04 if hi > lo else 1.1
        ax.set_xlim(hi * pad, lo / pad)  # inverted: pruning proceeds to the right
    ax.set_xlabel(label)


def finish_density_panel(ax, first, density, ylabel: str, title: str) -> None:
    """One panel of a row sharing y: log density axis, ``ylabel`` only on the ``first`` panel, y tick labels on
    every panel."""
    d = np.asarray(density, dtype=float)
    density_axis(ax, d[np.isfinite(d)])
    finish(ax, ylabel=ylabel if ax is first else None, title=title)
    ax.tick_params(labelleft=True)


def interval(ax, at, lower, upper, colour: str, vertical: bool = True, zorder: float = 2) -> list:
    """Capped segments from ``lower`` to ``upper`` at positions ``at`` (a bootstrap interval need not contain the
    estimate, so it is drawn as it is, not as ± errors); non-finite bounds draw nothing. Lines carry gid
    ``"interval"``."""
    out = []
    for p, lo, hi in zip(np.atleast_1d(at), np.atleast_1d(lower), np.atleast_1d(upper)):
        if np.isfinite(lo) and np.isfinite(hi):
            xy = ([p, p], [lo, hi]) if vertical else ([lo, hi], [p, p])
            out += ax.plot(*xy, color=colour, lw=0.9, marker="_" if vertical else "|", ms=5, zorder=zorder,
                           gid="interval")
    return out


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def marker(i: int) -> str:
    return MARKERS[i % len(MARKERS)]
