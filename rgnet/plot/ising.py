"""Validation of the RG toolkit on the exactly solvable 2D Ising Migdal-Kadanoff map (b = 2)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from rgnet.plot._style import OKABE_ITO, PAGE, finish, interval, new_figure, styled
from rgnet.rg.linearise import linearise
from rgnet.rg.toy import MK_EIGENVALUE, MK_FIXED_POINT
from rgnet.rg.trajectory import as_runs


def mk_exact() -> dict[str, float]:
    """Exact fixed point, eigenvalue and exponent of ``K' = 1/2 ln cosh 4K`` (b = 2)."""
    return {"K*": MK_FIXED_POINT, "λ": MK_EIGENVALUE, "y": float(np.log(MK_EIGENVALUE) / np.log(2.0))}


def mk_recovered(lin: xr.Dataset) -> dict[str, tuple[float, float, float]]:
    """``name -> (value, lower, upper)`` of the fitted fixed point, eigenvalue and exponent."""
    def ci(name):
        return (np.asarray(lin[name].values, dtype=float).ravel()[:2] if name in lin else np.full(2, np.nan))

    return {
        "K*": (float(np.real(lin["fixed_point"].values[0])), *ci("fixed_point_ci")),
        "λ": (float(np.real(lin["eigenvalues"].values[0])), *ci("abs_eigenvalues_ci")),
        "y": (float(lin["exponents"].values[0]), *ci("exponents_ci")),
    }


@styled
def ising_validation(traj: xr.DataArray, lin: xr.Dataset | None = None, window: float = 0.02, n_boot: int = 200):
    """Three panels: the Migdal-Kadanoff flow, its map with the fitted linearisation, recovered vs exact values.

    Parameters
    ----------
    traj : xr.DataArray
        :func:`rgnet.rg.migdal_kadanoff_2d` trajectories ``(run, level, coupling="K")`` (start some near
        ``K* = 0.304689`` so that a local fit is possible).
    lin : xr.Dataset, optional
        :func:`rgnet.rg.linearise` of ``traj``; default a quadratic fit on the pairs within ``window`` of the
        fixed point with ``n_boot`` bootstrap replicates.
    window : float
        Fit window around the fixed point (used only when ``lin`` is None).
    n_boot : int
        Bootstrap replicates (used only when ``lin`` is None).

    Returns
    -------
    matplotlib Figure
        (a) ``K_n`` vs level; (b) ``K_{n+1}`` vs ``K_n`` with the exact map and the fitted tangent at the fitted
        fixed point; (c) recovered / exact - 1 for ``K*``, ``λ = 2 tanh 4K*`` and ``y = ln λ / ln 2`` with
        bootstrap intervals.
    """

    if lin is None:
        lin = linearise(traj, model="quadratic", window=window, n_boot=n_boot)
    exact, found = mk_exact(), mk_recovered(lin)
    runs = as_runs(traj)
    values = np.asarray(runs.values, dtype=float)[..., 0]
    level = np.asarray(runs["level"].values)
    k_star = exact["K*"]
    fig, axes = new_figure(1, 3, (PAGE, 2.4))
    ax_flow, ax_map, ax_val = axes[0]

    for run in values:
        c = OKABE_ITO["vermillion"] if run[0] > k_star else OKABE_ITO["blue"]
        ax_flow.plot(level, run, color=c, lw=0.8, marker="o", ms=2)
    ax_flow.axhline(k_star, color="black", ls="--", lw=0.8)
    box = {"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1}
    for y_text, text, c, va in ((0.98, "K₀ > K*: ordered", OKABE_ITO["vermillion"], "top"),
                                (0.02, "K₀ < K*: disordered", OKABE_ITO["blue"], "bottom")):
        ax_flow.text(0.98, y_text, text, color=c, ha="right", va=va, fontsize=6.5, transform=ax_flow.transAxes,
                     bbox=box, zorder=5)
    ax_flow.text(1.01, k_star, "K*", transform=ax_flow.get_yaxis_transform(), va="center", fontsize=7)
    ax_flow.set_ylim(0, 2.2 * k_star)
    ax_flow.set_xticks(level)
    finish(ax_flow, "RG step n (b = 2)", "coupling Kₙ = J / kT", title="(a) Migdal–Kadanoff flow")

    k = np.linspace(0, 2 * k_star, 200)
    ax_map.plot(k, 0.5 * np.log(np.cosh(4 * k)), color="black", lw=1.0, label="K' = ½ ln cosh 4K")
    ax_map.plot(k, k, color="0.6", lw=0.6, ls=":", label="K' = K")
    x, y = values[:, :-1].ravel(), values[:, 1:].ravel()
    near = (x < 2 * k_star) & (y < 2 * k_star)
    ax_map.plot(x[near], y[near], "o", ms=2.5, mfc="none", mec=OKABE_ITO["blue"], label="pairs (Kₙ, Kₙ₊₁)")
    g, lam = found["K*"][0], found["λ"][0]
    kk = np.linspace(g - 0.12, g + 0.12, 2)
    ax_map.plot(kk, g + lam * (kk - g), color=OKABE_ITO["vermillion"], lw=1.2, label=f"fit, λ = {lam:.4f}")
    ax_map.plot([g], [g], "*", color=OKABE_ITO["vermillion"], ms=8, mec="black", mew=0.4)
    ax_map.set_xlim(0, 2 * k_star)
    ax_map.set_ylim(0, 2 * k_star)
    finish(ax_map, "Kₙ", "Kₙ₊₁", title="(b) RG map and linearisation")
    ax_map.legend(loc="upper left", fontsize=6, handlelength=1.5)

    names = list(exact)
    for i, name in enumerate(names):
        value, lo, hi = found[name]
        ref = exact[name]
        interval(ax_val, i, lo / ref - 1, hi / ref - 1, OKABE_ITO["vermillion"])
        ax_val.plot([i], [value / ref - 1], "o", color=OKABE_ITO["vermillion"], ms=4, zorder=3)
    ax_val.axhline(0, color="black", lw=0.8, label="exact")
    ax_val.set_xticks(range(len(names)),
                      [f"{n}\n{found[n][0]:.5f}\n({exact[n]:.5f})" for n in names], fontsize=6.5)
    ax_val.set_xlim(-0.5, len(names) - 0.5)
    ax_val.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    finish(ax_val, None, "recovered / exact − 1", title="(c) recovered vs (exact)")
    return fig
