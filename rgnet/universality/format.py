"""Plain-text report of :func:`rgnet.universality.universality`: the classes, the scoring table, the symmetry case."""

from __future__ import annotations

import itertools
import json
import textwrap

import numpy as np
import xarray as xr


def format_universality(ds: xr.Dataset) -> str:
    """Classes per signature (p-values and bootstrap shares per pair), the scoring table and the symmetry row."""
    within = ds.attrs.get("permute") == "within_seed"
    lines = [f"universality classes: edge where the same-class permutation test "
             f"({'labels exchanged within a seed' if within else 'labels exchanged between any runs'}) gives p > "
             f"{ds.attrs['alpha']:g} "
             f"({ds.attrs['class_method']}); cell: p-value (share of {ds.attrs['n_boot']} seed bootstraps in one "
             "class), * = edge"]
    tasks = [str(t) for t in ds["task"].values]
    sigs = [str(s) for s in ds["signature"].values]
    width = max(len(f"{a} ~ {b}") for a, b in itertools.combinations(tasks, 2)) + 2
    cell = max(14, *(len(s) for s in sigs)) + 2
    lines.append(f"{'pair':<{width}}" + "".join(f"{s:>{cell}}" for s in sigs))
    for a, b in itertools.combinations(tasks, 2):
        row = []
        for s in sigs:
            d = ds.sel(signature=s, task=a, other=b)
            p, share = float(d["p_value"]), float(d["class_share"])
            edge = "*" if p > ds.attrs["alpha"] else " "
            row.append(f"{p:.2f}{edge}({share:.2f})")
        lines.append(f"{a + ' ~ ' + b:<{width}}" + "".join(f"{c:>{cell}}" for c in row))
    for s in sigs:
        ids = ds["class_id"].sel(signature=s).values
        groups = ["{" + ", ".join(t for t, i in zip(tasks, ids) if i == k) + "}" for k in sorted(set(ids))]
        lines.append(f"classes by {s}: " + " ".join(groups))
    p_min = ds["p_min"].values[:, ~np.eye(len(tasks), dtype=bool)]
    lines.append(f"smallest p-value the seeds allow per pair: {np.nanmin(p_min):.3f} to {np.nanmax(p_min):.3f}"
                 + (f" (a pair cannot be told apart at alpha {ds.attrs['alpha']:g})"
                    if np.nanmin(p_min) > ds.attrs["alpha"] else ""))
    if "task_exponent" in ds:
        lines.append("\nexponents pooled per task (y = ln|lambda| / ln b, 95% bootstrap interval over runs):")
        for t in tasks:
            y = ds["task_exponent"].sel(task=t).values
            ci = ds["task_exponent_ci"].sel(task=t).values
            lines.append(f"  {t}: " + ", ".join(f"{v:+.2f} [{lo:+.2f}, {hi:+.2f}]" for v, (lo, hi) in zip(y, ci)))
    if "predictor" in ds.coords:
        lines += ["", *_table(ds), "", *_symmetry(ds)]
    unavailable = json.loads(ds.attrs.get("unavailable", "{}"))
    if unavailable:
        lines.append("\nnot computed: " + "; ".join(f"{k}: {v}" for k, v in unavailable.items()))
    return "\n".join(lines)


def _table(ds: xr.Dataset) -> list[str]:
    t = ds["transfers"].values
    off = ~np.eye(len(t), dtype=bool) & np.isfinite(t)
    n_yes, n_no = int(np.sum(t[off] == 1)), int(np.sum(t[off] == 0))
    names = [str(p) for p in ds["predictor"].values]
    lines = [f"prediction of the measured transfer ({len(ds.source)} tasks; verdicts: {n_yes} transfer, {n_no} do not, "
             f"{int((~np.eye(len(t), dtype=bool)).sum() - off.sum())} undecided, left out of the AUROC)",
             "primary: tau_w = weighted Kendall tau of the score vs the paired gap among each target's sources, mean "
             "over targets, [95% interval over tasks resampled], p = Mantel permutation p-value (task labels "
             f"permuted), Holm-adjusted over the {len(names)} predictors; beyond = correlation with the gap after "
             "source and target effects (p Holm-adjusted); secondary: rho = Spearman vs the gap, AUROC for the "
             "verdict [tasks resampled], LOTO = balanced accuracy with leave-one-task-out thresholds; NaN: the "
             "predictor is constant (no prediction)"]
    w = max(len(n) for n in names) + 2
    lines.append(f"{'predictor':<{w}}{'tau_w [95% CI]':>24}{'p_holm':>8}{'beyond':>8}{'p_holm':>8}{'rho':>7}"
                 f"{'AUROC [95% CI]':>22}{'LOTO':>7}")
    for n in names:
        d = ds.sel(predictor=n)
        lines.append(f"{n:<{w}}{_f(d['tau_w'], '+.2f') + _ci(d['tau_task_ci'], '+.2f'):>24}"
                     f"{_f(d['p_tau_holm'], '.3f'):>8}{_f(d['beyond'], '+.2f'):>8}{_f(d['p_beyond_holm'], '.3f'):>8}"
                     f"{_f(d['rho_gap'], '+.2f'):>7}{_f(d['auroc']) + _ci(d['auroc_task_ci'], '.2f'):>22}"
                     f"{_f(d['loto_balanced_accuracy']):>7}")
    best_tau = int(np.argmax(ds["tau_w"].fillna(-2).values))
    lines.append(f"highest tau_w: {names[best_tau]} ({float(ds.tau_w[best_tau]):+.2f}); the best AUROC any symmetric "
                 f"score (a distance, a class) can reach: {float(ds.attrs['symmetric_oracle_auroc']):.2f} (verdicts "
                 "of a -> b and b -> a averaged)")
    return lines


def _ci(v: xr.DataArray, fmt: str) -> str:
    lo, hi = (float(x) for x in v.values)
    return "" if not np.isfinite(lo) else f" [{lo:{fmt}}, {hi:{fmt}}]"


def _symmetry(ds: xr.Dataset) -> list[str]:
    pairs = [(str(s), str(t)) for s in ds["source"].values for t in ds["target"].values
             if bool(ds["symmetry"].sel(source=s, target=t))]
    if not pairs:
        return ["symmetry case: no two tasks differ only by a permutation of the input features"]
    lines = ["symmetry case (tasks related by a fixed permutation of the input features): measured "
             + ", ".join(f"{s} -> {t} {_verdict(ds, s, t)}" for s, t in pairs),
             "per predictor: percentile of the pair's score among all pairs (1.00 = most strongly predicted to "
             "transfer); class predictors: 1 = same class"]
    names = [str(p) for p in ds["predictor"].values]
    w = max(len(n) for n in names) + 2
    heads = [f"{s} -> {t}" for s, t in pairs]
    widths = [max(12, len(h)) + 2 for h in heads]   # full task names, never run together
    lines.append(f"{'predictor':<{w}}" + "".join(f"{h:>{cw}}" for h, cw in zip(heads, widths)))
    off = ~np.eye(ds.sizes["source"], dtype=bool)
    for n in names:
        score = ds["score"].sel(predictor=n)
        allv = score.values[off & np.isfinite(score.values)]
        cells = []
        for s, t in pairs:
            v = float(score.sel(source=s, target=t))
            if str(ds["predictor_kind"].sel(predictor=n).values) == "class":
                cells.append(f"{v:.0f}")
            else:
                cells.append("n/a" if not np.isfinite(v) or allv.size == 0 else f"{np.mean(allv <= v):.2f}")
        lines.append(f"{n:<{w}}" + "".join(f"{c:>{cw}}" for c, cw in zip(cells, widths)))
    lines += textwrap.wrap(ds.attrs["symmetry_note"], 118)
    return lines


def _verdict(ds, s, t) -> str:
    v = float(ds["transfers"].sel(source=s, target=t))
    g = float(ds["gap"].sel(source=s, target=t))
    word = "n/a" if np.isnan(v) else ("transfers" if v else "does not transfer")
    return word + ("" if np.isnan(g) else f" (gap {100 * g:+.1f} points)")


def _f(v, fmt: str = ".2f") -> str:
    v = float(v)
    return "n/a" if not np.isfinite(v) else format(v, fmt)
