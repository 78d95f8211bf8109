"""The verdict tables as text: the density ladder of each experiment, the transfer matrix, the gaps per level."""

from __future__ import annotations

import numpy as np
import xarray as xr

from rgnet.verdicts.rules import RULES
from rgnet.verdicts.tables import TRUNK_ARM


def format_tickets(ds: xr.Dataset) -> str:
    """The density ladder (mean ± std per arm) and the winning-ticket density of each experiment."""
    lines = [f"protocol: {ds.attrs['protocol']}", f"matching rule: {ds.attrs['rule']}; metric {ds.attrs['metric']}"]
    for e in ds.experiment.values:
        d = ds.sel(experiment=e)
        arms_here = [a for a in ds.arm.values if int(d.seeds.sel(arm=a).max()) > 0]
        lines.append(f"\n{e}  ({int(d.seeds.sel(arm=TRUNK_ARM, level=0))} seeds; dense "
                     f"{_pm(d.dense_mean, d.dense_std)})")
        widths = [max(14, len(a)) for a in arms_here]   # full arm names: aligned and unaligned transfers differ
        lines.append("level  density %  " + "  ".join(f"{a:>{w}}" for a, w in zip(arms_here, widths)))
        for lv in ds.level.values:
            if np.isnan(float(d.density.sel(level=lv))):
                continue
            cells = []
            for a, w in zip(arms_here, widths):
                m = float(d.acc_mean.sel(arm=a, level=lv))
                cell = "" if np.isnan(m) else _pm(d.acc_mean.sel(arm=a, level=lv), d.acc_std.sel(arm=a, level=lv)) \
                    + (" *" if bool(d.matching.sel(arm=a, level=lv)) else "  ")
                cells.append(f"{cell:>{w}}")
            lines.append(f"{lv:>5}  {100 * float(d.density.sel(level=lv)):>9.1f}  " + "  ".join(cells))
        lines.append("winning ticket (density %): " + ", ".join(
            f"{a} {_pct(d.winning_density.sel(arm=a))}" for a in arms_here))
        runs = ds.run.values[ds.run_experiment.values == e]
        lines.append("per run, imp: " + ", ".join(
            f"seed {int(ds.seed.sel(run=r))} {_pct(ds.run_winning_density.sel(run=r, arm=TRUNK_ARM))}" for r in runs))
    lines.append("\n(* = matching; accuracies in %, mean ± std over seeds)")
    return "\n".join(lines)


def format_transfer_matrix(ds: xr.Dataset) -> str:
    """Rows = source task, columns = target task: the rule's verdict and the paired gap over the density range."""
    lo, hi = ds.attrs.get("density_range", (0.0, 1.0))
    lines = [f"protocol: {ds.attrs['protocol']}", f"rule {ds.attrs.get('rule_name', '')}: {ds.attrs['rule']}; "
             f"metric {ds.attrs['metric']}",
             "cell: verdict (yes / no / ? = undecided), then the transferred minus own ticket (same seed and level) "
             f"averaged over the pruned levels with density in ({lo:g}, {hi:g}], mean over seeds in points, with its "
             f"{ds.attrs.get('ci', 0.95):g} t interval"]
    rule = RULES.get(ds.attrs.get("rule_name", ""))
    if rule is not None and not rule.on_gap:
        lines.append(f"(rule {rule.name} decides on how deep the ticket stays matching, not on this gap: a gap near "
                     "or above 0 can sit beside 'no', and a negative one beside 'yes')")
    width = max(24, *(len(t) for t in ds.target.values))
    rows = max(len("source \\ target"), *(len(s) for s in ds.source.values))
    corner = "source \\ target"
    lines.append(f"{corner:<{rows}}  " + "  ".join(f"{t:>{width}}" for t in ds.target.values))
    for s in ds.source.values:
        cells = []
        for t in ds.target.values:
            c = ds.sel(source=s, target=t)
            v = int(c.transfer_verdict)
            if v == -2:
                cells.append(f"{'-':>{width}}")
                continue
            g, (low, high) = 100 * float(c.gap_range), 100 * c.gap_range_ci.values
            cell = {1: "yes", 0: "no", -1: "?"}[v] + " " + ("n/a" if np.isnan(g) else f"{g:+.1f}") + (
                "" if np.isnan(low) else f" [{low:+.1f}, {high:+.1f}]")
            cells.append(f"{cell:>{width}}")
        lines.append(f"{s:<{rows}}  " + "  ".join(cells))
    lines.append("own winning density %: " + ", ".join(
        f"{t} {_pct(ds.winning_density.sel(target=t))}" for t in ds.target.values))
    return "\n".join(lines)


def format_transfer_gaps(ds: xr.Dataset) -> str:
    """Per pair and level: transferred minus own ticket (mean ± std over paired seeds), in points."""
    pairs = [(s, t) for s in ds.source.values for t in ds.target.values
             if s != t and float(ds.n_transfers.sel(source=s, target=t).max()) > 0]
    levels = [int(lv) for lv in ds.level.values
              if lv > 0 and any(float(ds.n_transfers.sel(source=s, target=t, level=lv)) > 0 for s, t in pairs)]
    width = max([len(f"{s} -> {t}") for s, t in pairs] + [12])
    dens = ds.density.mean("target")
    lines = [f"transferred minus own ticket, points ({ds.attrs['metric']}); columns: level (density %)",
             f"{'':<{width}}  " + "  ".join(f"{f'{lv} ({100 * float(dens.sel(level=lv)):.1f})':>12}" for lv in levels)]
    for s, t in pairs:
        c = ds.sel(source=s, target=t)
        cells = [_pm(c.gap.sel(level=lv), c.gap_std.sel(level=lv)) for lv in levels]
        lines.append(f"{f'{s} -> {t}':<{width}}  " + "  ".join(f"{x:>12}" for x in cells))
    return "\n".join(lines)


def _pm(mean, std) -> str:
    m, s = 100 * float(mean), 100 * float(std)
    return f"{m:.1f}" if np.isnan(s) else f"{m:.1f}±{s:.1f}"


def _pct(v) -> str:
    v = float(v)
    return "none" if np.isnan(v) else f"{100 * v:.1f}"
