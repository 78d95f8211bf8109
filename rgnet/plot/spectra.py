"""Spectra of the linearised RG map: Koopman/DMD eigenvalues in the complex plane, exponents per task."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from rgnet.errors import ConfigError
from rgnet.plot._style import COLUMN, colour, finish, interval, marker, new_axes, styled

EigenInput = xr.DataArray | xr.Dataset | Mapping


def _values(obj, variable: str) -> xr.DataArray | np.ndarray:
    if isinstance(obj, xr.Dataset):
        if variable not in obj:
            raise ConfigError(f"The Dataset has no {variable!r}; pass the output of rgnet.rg.dmd or rg.linearise.")
        return obj[variable]
    return obj


def eigenvalue_sets(eigs: EigenInput, dim: str = "task") -> dict[str, np.ndarray]:
    """Complex eigenvalues per task, from a mapping ``task -> values`` or an xarray object with a ``task`` dim.

    Values may be arrays, DataArrays, or Datasets holding ``eigenvalues`` (:func:`rgnet.rg.dmd`,
    :func:`rgnet.rg.linearise`). An xarray object groups by ``dim`` when it is a dim or a coordinate; otherwise
    all its eigenvalues form one set. NaNs (padding) are dropped.
    """
    if isinstance(eigs, Mapping) and not isinstance(eigs, xr.Dataset):  # a Dataset is a Mapping too
        items = {str(k): _values(v, "eigenvalues") for k, v in eigs.items()}
    else:
        da = _values(eigs, "eigenvalues")
        if not isinstance(da, xr.DataArray):
            raise ConfigError("Eigenvalues must be a DataArray, a Dataset or a dict task -> values, "
                              f"not {type(da).__name__}.")
        if dim in da.dims:
            items = {str(t): da.sel({dim: t}) for t in da[dim].values}
        elif dim in da.coords:
            labels = np.asarray(da[dim].values).ravel()
            flat = np.asarray(da.values).ravel()
            items = {str(t): flat[labels == t] for t in dict.fromkeys(labels)}
        else:
            items = {str(da.name or "eigenvalues"): da}
    out = {}
    for k, v in items.items():
        arr = np.asarray(v.values if isinstance(v, xr.DataArray) else v).astype(complex).ravel()
        out[k] = arr[np.isfinite(arr)]
    return out


@styled
def spectrum(eigs: EigenInput, dim: str = "task", ax=None, title: str = "Koopman / DMD spectrum"):
    """Eigenvalues in the complex plane with the unit circle, one colour and marker per task.

    Parameters
    ----------
    eigs : DataArray, Dataset or mapping
        Complex eigenvalues with a ``task`` dim or coordinate (e.g. ``xr.concat`` of :func:`rgnet.rg.dmd`
        outputs along ``task``), or a mapping ``task -> eigenvalues`` (arrays or dmd/linearise Datasets).
    dim : str
        Name of the task dim or coordinate.
    ax : matplotlib Axes, optional
    title : str

    Returns
    -------
    matplotlib Axes
        Outside the unit circle: growing (relevant) directions; inside: decaying (irrelevant) ones.
    """
    sets = eigenvalue_sets(eigs, dim)
    if not any(v.size for v in sets.values()):
        raise ConfigError("No finite eigenvalue to plot.")
    ax = new_axes(ax, (COLUMN, COLUMN + 0.45))
    t = np.linspace(0, 2 * np.pi, 361)
    ax.plot(np.cos(t), np.sin(t), color="0.4", lw=0.8, zorder=1, label="unit circle |λ| = 1")
    ax.axhline(0, color="0.8", lw=0.5, zorder=0)
    ax.axvline(0, color="0.8", lw=0.5, zorder=0)
    for i, (task, lam) in enumerate(sets.items()):
        ax.scatter(lam.real, lam.imag, s=20, marker=marker(i), color=colour(i), edgecolors="black", linewidths=0.3,
                   alpha=0.85, zorder=3, label=task)
    every = np.concatenate(list(sets.values()))
    r = max(1.05, 1.08 * float(np.max(np.abs(every), initial=0)))
    ax.set_xlim(-r, r)
    ax.set_ylim(-r, r)
    ax.set_aspect("equal")
    finish(ax, "Re λ", "Im λ", title=title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=min(3, len(sets) + 1))
    return ax


def _pair_halves(v: xr.Dataset, n: int) -> np.ndarray:
    """``(n,)`` int: 1 for the first half of a conjugate pair, 2 for its second half, 0 for a real mode (from
    ``partner`` when the Dataset has it, else from conjugate ``eigenvalues``)."""
    out = np.zeros(n, int)
    if "partner" in v:
        partner = np.asarray(v["partner"].values, int).ravel()
        for k, q in enumerate(partner[:n]):
            if q >= 0:
                out[k] = 1 if q > k else 2
    elif "eigenvalues" in v and np.asarray(v["eigenvalues"].values).dtype.kind == "c":
        lam = np.asarray(v["eigenvalues"].values, complex).ravel()[:n]
        scale = 1e-9 * max(1.0, float(np.nanmax(np.abs(lam), initial=0.0)))
        for k in range(len(lam)):
            if out[k] == 0 and abs(lam[k].imag) > scale:
                rest = [q for q in range(k + 1, len(lam)) if out[q] == 0 and abs(lam[q] - np.conj(lam[k])) <= scale]
                if rest:
                    out[k], out[rest[0]] = 1, 2
    return out


def _exponent_sets(data, dim: str):
    """``{task: (y (mode,), ci (mode, 2) or None, pair (mode,) bool)}``; a conjugate pair is one mode (its
    second half is dropped) and ``pair`` marks it."""
    if isinstance(data, Mapping) and not isinstance(data, xr.Dataset):
        items = dict(data)
    elif isinstance(data, xr.Dataset) and dim in data.dims:
        items = {str(t): data.sel({dim: t}) for t in data[dim].values}
    else:
        items = {"": data}
    out = {}
    for task, v in items.items():
        if isinstance(v, xr.Dataset):
            name = "exponents" if "exponents" in v else "exponent"
            if name not in v:
                raise ConfigError(f"The Dataset for {task!r} has no exponents; pass rgnet.rg.linearise output.")
            y = np.asarray(v[name].values, dtype=float).ravel()
            ci_name = f"{name}_ci"
            ci = np.asarray(v[ci_name].transpose(..., "bound").values, dtype=float).reshape(-1, 2) \
                if ci_name in v else None
            halves = _pair_halves(v, len(y))
        else:
            y = np.asarray(v.values if isinstance(v, xr.DataArray) else v, dtype=float).ravel()
            ci, halves = None, np.zeros(len(y), int)
        keep = halves != 2
        out[str(task)] = (y[keep], None if ci is None else ci[keep], halves[keep] == 1)
    return out


@styled
def exponents(data, dim: str = "task", modes: int | None = 4, ax=None):
    """Scaling exponents ``y = ln|λ| / ln b`` with their bootstrap intervals, per task and mode.

    Parameters
    ----------
    data : mapping or xr.Dataset
        ``task -> rgnet.rg.linearise(...)`` Dataset (``exponents(mode)``, ``exponents_ci(mode, bound)``) or
        array of exponents; or one Dataset with a ``task`` dim holding those variables.
    dim : str
        Name of the task dim.
    modes : int, optional
        Leading modes (largest ``|λ|``) to draw per task (default 4; None: all). A conjugate pair is one mode
        (both halves have one exponent and one interval), drawn with an open marker.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        y > 0: relevant; y < 0: irrelevant; the capped segments are the bootstrap intervals.
    """
    sets = _exponent_sets(data, dim)
    n_modes = max(len(y) for y, _, _ in sets.values())
    n_modes = n_modes if modes is None else min(modes, n_modes)
    ax = new_axes(ax, (COLUMN, 2.6))
    ax.axhline(0, color="0.5", lw=0.8, zorder=0)
    offsets = np.linspace(-0.3, 0.3, n_modes) if n_modes > 1 else np.zeros(1)
    any_pair = False
    for k in range(n_modes):
        xs, ys, pairs = [], [], []
        for t, (y, ci, pair) in enumerate(sets.values()):
            if k >= len(y) or not np.isfinite(y[k]):
                continue
            xs.append(t + offsets[k])
            ys.append(y[k])
            pairs.append(bool(pair[k]))
            if ci is not None:
                interval(ax, xs[-1], *ci[k], colour(k))
        if xs:
            ax.plot(xs, ys, marker(k), color=colour(k), ms=4, zorder=3,
                    label=f"mode {k}" + (" (largest |λ|)" if k == 0 else ""))
            if any(pairs):  # a conjugate pair: an open marker on top
                any_pair = True
                ax.plot(np.asarray(xs)[pairs], np.asarray(ys)[pairs], marker(k), color=colour(k), ms=4, zorder=3.5,
                        mfc="white", gid="conjugate pair")
    ax.set_xticks(range(len(sets)))
    ax.set_xticklabels(list(sets), rotation=30, ha="right")
    ax.set_xlim(-0.6, len(sets) - 0.4)
    finish(ax, None, "scaling exponent y = ln|λ| / ln b", title="RG exponents with bootstrap intervals")
    if n_modes > 1 or any_pair:
        from matplotlib.lines import Line2D  # noqa: PLC0415

        handles, labels = ax.get_legend_handles_labels()
        if any_pair:  # a legend entry only, not an artist of the axes
            handles.append(Line2D([], [], marker="o", ls="", color="0.3", mfc="white", ms=4))
            labels.append("open: a conjugate pair (one mode)")
        ax.legend(handles, labels)
    return ax
