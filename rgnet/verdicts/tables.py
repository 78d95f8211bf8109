"""Verdict tables of recorded runs: which levels are *matching*, where the winning ticket lies, which tickets transfer.

A level is **matching** when its accuracy is within one standard deviation (over seeds) of the dense
accuracy — ``acc >= dense_mean - dense_std`` (Frankle et al.) — or, when only one seed exists, within
``tolerance`` of it (default 1 point; the output says which rule was used). The **winning ticket** of a run
(or a group of seeds) is the sparsest level reached while every level before it is matching: IMP's ladder,
walked down until the first level that is not.

All functions read files written by ``rgnet record``, ``rgnet baselines`` and ``rgnet transfer`` and return
xarray objects; nothing here trains.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import xarray as xr

from rgnet.catalog import expand, index_labels
from rgnet.config import STOP_RULES
from rgnet.errors import ConfigError, StoreError
from rgnet.store.cf import self_describing
from rgnet.store.reader import branches, read_levels
from rgnet.store.schema import LEVEL_VARS
from rgnet.tasks import task_label
from rgnet.verdicts.rules import (
    DEFAULT_RULE,
    DEFAULT_TOLERANCE,
    get_rule,
    matching,
    mean_and_half_width,
    rule_attrs,
    verdict_codes,
    winning_level,
)

TRUNK_ARM = "imp"
TRANSFER_ARM = "transfer from "   # + the source task's label: one arm per source task, its seeds pooled
METRICS = [m for m, (dims, *_) in LEVEL_VARS.items() if dims == ("level",) and "_acc" in m]
DEFAULT_METRIC = "test_acc"  # test accuracy at the early-stop iteration (Frankle & Carbin)
DENSITY_RANGE = (0.0, 1.0)   # transfer gaps averaged over every pruned level measured: no range chosen per data


def arms(path: str | Path, metric: str = DEFAULT_METRIC, labels: dict[str, str] | None = None) -> xr.Dataset:
    """One run file's accuracy ladder: ``acc(arm, level)`` for the trunk (arm ``imp``) and every branch.

    Levels a branch has not trained are NaN. ``density(level)`` is the trunk's; ``source(arm)`` labels the
    source task of transfer branches (empty for the others), whose arm is ``transfer from <source>`` (with the
    source's seed where one file holds transfers from several seeds of one source task).
    """
    if metric not in METRICS:
        raise ConfigError(f"--metric {metric!r} is not an accuracy the files hold; choose one of {', '.join(METRICS)}")
    levels, trunk, attrs = read_levels(path, [metric, "density", "diverged"])
    if len(levels) == 0:
        raise StoreError(f"{str(path)!r} has no complete level yet; finish recording it (run the same `rgnet "
                         "record` again) or leave it out")
    names, sources, seeds = [TRUNK_ARM], [""], [None]
    acc = [_without_diverged(trunk, metric)]
    for group in branches(path):
        lv, b, battrs = read_levels(path, [metric, "diverged"], group)
        b[metric] = _without_diverged(b, metric)
        row = np.full(len(levels), np.nan)
        idx = np.searchsorted(levels, lv)
        keep = idx < len(levels)
        row[idx[keep]] = b[metric][keep]
        source = _source_label(battrs, labels) if "source_config" in battrs else ""
        names.append(TRANSFER_ARM + source if source else group.split("/", 1)[1])
        acc.append(row)
        sources.append(source)
        seeds.append(battrs.get("source_seed"))
    names = [f"{n} (seed {s})" if s is not None and names.count(n) > 1 else n for n, s in zip(names, seeds)]
    ds = xr.Dataset({"acc": (("arm", "level"), np.array(acc), {"units": "1", "metric": metric})},
                    coords={"arm": names, "level": levels, "density": ("level", trunk["density"]),
                            "source": ("arm", sources)})
    ds.attrs.update(run_id=attrs["run_id"], path=str(path), config=attrs["config"],
                    task=task_label(attrs["config"], labels), seed=json.loads(attrs["config"])["seed"],
                    protocol=protocol(attrs["config"], attrs.get("task")))
    return ds


def _without_diverged(values: dict, metric: str) -> np.ndarray:
    """The metric with diverged levels set to NaN: a diverged level is neither matching nor a ticket."""
    acc = np.asarray(values[metric], dtype=float)
    return np.where(values["diverged"] == 1, np.nan, acc) if "diverged" in values else acc


def winning_tickets(paths: str | Path | Iterable[str | Path], metric: str = DEFAULT_METRIC,
                    tolerance: float | None = None, labels: dict[str, str] | None = None,
                    rule: str = DEFAULT_RULE, rule_params: dict | None = None) -> xr.Dataset:
    """Matching verdicts and winning tickets for many run files (or a sweep's ``index.nc``), grouped by
    experiment (task label; a sweep index's run labels unless ``labels`` is given).

    Returns a Dataset with dims ``(experiment, arm, level)`` — mean and std of the accuracy over seeds, the
    ``verdict`` of ``rule`` (:mod:`rgnet.verdicts.rules`: 1 matching, 0 not, -1 undecided), ``matching`` (decided
    matching), the ``winning_density`` per arm — and per run ``(run, arm)`` a single-run view (a run within one
    dense std of its own dense accuracy: the experiment's std where there are seeds, else ``tolerance``).
    ``rule_params`` (and ``tolerance``) set the rule's parameters.
    """
    rule_, params = get_rule(rule, **{"tolerance": tolerance, **(rule_params or {})})
    labels = labels if labels is not None else index_labels(paths)  # a sweep index names its tasks
    runs = [arms(p, metric, labels) for p in expand(paths)]
    all_arms = list(dict.fromkeys(a for r in runs for a in r.arm.values))
    nlev = max(r.sizes["level"] for r in runs)
    acc = np.full((len(runs), len(all_arms), nlev), np.nan)
    dens = np.full((len(runs), nlev), np.nan)
    for i, r in enumerate(runs):
        for a in r.arm.values:
            acc[i, all_arms.index(a), : r.sizes["level"]] = r.acc.sel(arm=a).values
        dens[i, : r.sizes["level"]] = r.density.values
    labels = [r.attrs["task"] for r in runs]
    per_run = xr.Dataset(
        {"acc": (("run", "arm", "level"), acc), "run_density": (("run", "level"), dens)},
        coords={"run": np.arange(len(runs)), "arm": all_arms, "level": np.arange(nlev),
                "experiment": ("run", labels), "seed": ("run", [r.attrs["seed"] for r in runs]),
                "path": ("run", [r.attrs["path"] for r in runs]), "run_id": ("run", [r.attrs["run_id"] for r in runs])})
    g = per_run.acc.groupby("experiment")
    mean, std, n = g.mean("run"), g.std("run", ddof=1), g.count("run")
    dense_mean, dense_std = mean.sel(arm=TRUNK_ARM, level=0), std.sel(arm=TRUNK_ARM, level=0)
    seeds = n.sel(arm=TRUNK_ARM, level=0)
    dense_std = dense_std.where(seeds > 1)
    verdict = xr.concat([rule_.decide(sub, sub.sel(arm=TRUNK_ARM, level=0, drop=True), "run", **params)
                         .expand_dims(experiment=[e]) for e, sub in per_run.acc.groupby("experiment")], "experiment")
    is_match = verdict == 1
    density = per_run.run_density.groupby("experiment").mean("run")
    win = winning_level(is_match, mean)
    out = xr.Dataset({
        "acc_mean": mean.assign_attrs(long_name=f"{metric}, mean over seeds", units="1"),
        "acc_std": std.assign_attrs(long_name=f"{metric}, std over seeds (ddof 1)", units="1"),
        "seeds": n.assign_attrs(long_name="number of seeds"),
        "dense_mean": dense_mean.drop_vars(["arm", "level"]).assign_attrs(
            long_name=f"dense {metric}, mean over seeds", units="1"),
        "dense_std": dense_std.drop_vars(["arm", "level"]).assign_attrs(
            long_name=f"dense {metric}, std over seeds (ddof 1)", units="1"),
        "verdict": verdict_codes(verdict).assign_attrs(long_name=f"matching verdict of rule {rule_.name}"),
        "matching": is_match.assign_attrs(long_name=f"decided matching by rule {rule_.name}"),
        "winning_level": win.assign_attrs(long_name="IMP level of the winning ticket"),
        "winning_density": _density_at(density, win).assign_attrs(
            long_name="density of the winning ticket (sparsest level with all denser levels matching)", units="1"),
        "density": density.assign_attrs(long_name="mean density of the trunk", units="1"),
    })
    # single runs: own dense accuracy, the experiment's dense std where there are seeds
    run_dense = per_run.acc.sel(arm=TRUNK_ARM, level=0).drop_vars(["arm", "level"])
    run_std = dense_std.sel(experiment=per_run.experiment).drop_vars("experiment")
    tol = params.get("tolerance", DEFAULT_TOLERANCE)
    run_match = matching(per_run.acc, run_dense, run_std, tol).where(per_run.acc.notnull(), False)
    run_win = winning_level(run_match, per_run.acc)
    out["run_acc"] = per_run.acc.assign_attrs(long_name=metric, units="1")
    out["run_matching"] = run_match.assign_attrs(long_name="run within one std of its own dense accuracy")
    out["run_winning_density"] = _density_at(per_run.run_density, run_win).assign_attrs(
        long_name="density of the run's winning ticket", units="1")
    out = out.assign_coords({k: per_run[k] for k in ("seed", "path", "run_id")})
    out["run"].attrs.update(long_name="run (index into path)")
    out["seed"].attrs.update(long_name="seed of the run")
    out["level"].attrs.update(long_name="IMP level")
    out = out.assign_coords(run_experiment=("run", labels))
    out.attrs.update(metric=metric, **params, **rule_attrs(rule_, params), protocol=_protocols(runs, metric))
    return self_describing(out, "rgnet winning tickets: matching verdicts per experiment, arm and level")


def transfer_matrix(paths: str | Path | Iterable[str | Path], metric: str = DEFAULT_METRIC,
                    tolerance: float | None = None, labels: dict[str, str] | None = None,
                    rule: str = DEFAULT_RULE, rule_params: dict | None = None,
                    density_range: tuple[float, float] = DENSITY_RANGE, ci: float = 0.95,
                    seed: int = 0) -> xr.Dataset:
    """The transfer experiment as a Dataset with dims ``(source, target, level)``.

    ``paths`` are target run files holding ``branches/transfer_*`` (and optionally baselines), or a sweep's
    ``index.nc`` (whose run labels then name the tasks unless ``labels`` is given). Per pair:
    ``transfer_acc`` (mean over every transferred ticket into that target task), ``gap`` (transferred minus the
    target's own ticket of the same level, paired within each target file, then averaged), ``transfer_matching``
    and ``transfer_winning_density``; ``transfers`` is True when the transferred ticket stays matching down to
    the target's own winning-ticket density. Per target: ``own_acc``, ``dense_acc``, ``random_acc`` and
    ``reinit_acc`` where the baselines exist. The diagonal (source = target task) is the own ticket. Aligned
    transfers (``rgnet transfer --align``) are sources of their own, labelled ``<source> [aligned inputs]``.

    Transfer as a number: ``gap_seed(source, target, seed, level)`` is the transferred ticket minus the target's
    own IMP ticket of the same seed and level; ``gap_ci`` its ``ci`` t interval over seeds per level;
    ``gap_range_seed`` its mean over the pruned levels whose density lies in ``density_range`` (the same levels
    for every seed of a pair), with ``gap_range``, its t interval ``gap_range_ci`` and percentile bootstrap
    interval ``gap_range_boot`` (over seeds, ``seed`` seeds the resampling). ``transfer_verdict`` is ``rule``'s
    (1 transfers, 0 does not, -1 undecided, -2 not run) and ``transfers`` the decided part of it (NaN otherwise).
    """
    rule_, params = get_rule(rule, **{"tolerance": tolerance, **(rule_params or {})})
    labels = labels if labels is not None else index_labels(paths)  # a sweep index names its tasks
    runs = [arms(p, metric, labels) for p in expand(paths)]
    nlev = max(r.sizes["level"] for r in runs)
    targets = sorted({r.attrs["task"] for r in runs})
    pairs: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {}
    own: dict[str, list[np.ndarray]] = {t: [] for t in targets}
    seeds = sorted({int(r.attrs["seed"]) for r in runs})
    own_seed = np.full((len(targets), len(seeds), nlev), np.nan)
    by_seed: dict[tuple[str, str, int], list[np.ndarray]] = {}
    base: dict[str, dict[str, list[np.ndarray]]] = {t: {} for t in targets}
    dens: dict[str, list[np.ndarray]] = {t: [] for t in targets}
    for r in runs:
        t = r.attrs["task"]
        own_r = _pad(r.acc.sel(arm=TRUNK_ARM).values, nlev)
        own[t].append(own_r)
        own_seed[targets.index(t), seeds.index(int(r.attrs["seed"]))] = own_r  # one run per task and seed
        dens[t].append(_pad(r.density.values, nlev))
        for a in r.arm.values[1:]:
            row = _pad(r.acc.sel(arm=a).values, nlev)
            src = str(r.source.sel(arm=a).values)
            if src:
                pairs.setdefault((src, t), []).append((row, own_r))
                by_seed.setdefault((src, t, int(r.attrs["seed"])), []).append(row)
            else:
                base[t].setdefault(a, []).append(row)
    sources = sorted({s for s, _ in pairs} | set(targets))
    shape = (len(sources), len(targets), nlev)
    t_mean, t_std, gap, gap_std, count = (np.full(shape, np.nan) for _ in range(5))
    for (s, t), rows in pairs.items():
        i, j = sources.index(s), targets.index(t)
        tr = np.array([a for a, _ in rows])
        d = np.array([a - b for a, b in rows])
        t_mean[i, j], gap[i, j] = _mean(tr), _mean(d)
        t_std[i, j], gap_std[i, j] = _std(tr), _std(d)
        count[i, j] = np.sum(~np.isnan(tr), 0)
    own_arr = {t: np.array(v) for t, v in own.items()}
    for t in targets:  # the diagonal: a task's own ticket
        if t in sources and (t, t) not in pairs:
            i, j = sources.index(t), targets.index(t)
            t_mean[i, j], t_std[i, j], gap[i, j] = _mean(own_arr[t]), _std(own_arr[t]), 0.0
            count[i, j] = np.sum(~np.isnan(own_arr[t]), 0)
    own_mean = np.array([_mean(own_arr[t]) for t in targets])
    own_std = np.array([_std(own_arr[t]) for t in targets])
    dense_mean, dense_std = own_mean[:, 0], np.array([own_std[j, 0] if len(own_arr[t]) > 1 else np.nan
                                                     for j, t in enumerate(targets)])
    coords = {"source": sources, "target": targets, "level": np.arange(nlev),
              "density": (("target", "level"), np.array([_mean(dens[t]) for t in targets]))}
    ds = xr.Dataset({
        "transfer_acc": (("source", "target", "level"), t_mean, {"long_name": f"transferred ticket, {metric}"}),
        "transfer_acc_std": (("source", "target", "level"), t_std, {"long_name": "std over transferred tickets"}),
        "gap": (("source", "target", "level"), gap, {"long_name": "transferred minus own ticket", "units": "1"}),
        "gap_std": (("source", "target", "level"), gap_std, {"long_name": "std of the paired gap"}),
        "n_transfers": (("source", "target", "level"), count, {"long_name": "transferred tickets averaged"}),
        "own_acc": (("target", "level"), own_mean, {"long_name": f"target's own IMP ticket, {metric}"}),
        "own_acc_std": (("target", "level"), own_std),
        "dense_acc": (("target",), dense_mean, {"long_name": f"dense network, {metric}"}),
        "dense_std": (("target",), dense_std, {"long_name": "std of dense accuracy over seeds (NaN: one seed)"}),
    }, coords=coords)
    for arm, var in (("random_prune_layerwise", "random_acc"), ("random_prune_global", "random_global_acc"),
                     ("reinit", "reinit_acc")):
        vals = np.array([_mean(base[t][arm]) if base[t].get(arm) else np.full(nlev, np.nan) for t in targets])
        ds[var] = (("target", "level"), vals, {"long_name": f"target's {arm} baseline, {metric}"})
    _per_seed(ds, seeds, own_seed, by_seed, density_range, ci, seed)
    dense_seed = ds.own_seed.isel(level=0, drop=True)
    ds["own_matching"] = rule_.decide(ds.own_seed, dense_seed, "seed", **params) == 1
    ds["transfer_matching"] = rule_.decide(ds.transfer_seed, dense_seed, "seed", **params) == 1
    own_win = winning_level(ds.own_matching, ds.own_acc)
    tr_win = winning_level(ds.transfer_matching, ds.transfer_acc)
    ds["winning_density"] = _density_at(ds.density, own_win).assign_attrs(
        long_name="target's own winning-ticket density", units="1")
    ds["transfer_winning_density"] = _density_at(ds.density, tr_win).transpose("source", "target").assign_attrs(
        long_name="sparsest density down to which the transferred ticket stays matching", units="1")
    # judge each pair on the levels its transfers were trained at
    own_win_tested = winning_level(ds.own_matching, ds.own_acc.where(ds.n_transfers > 0))
    ds["compare_level"] = own_win_tested.transpose("source", "target").assign_attrs(
        long_name="target's own winning level among the levels the pair was trained at (-1: none)")
    at = {"level": own_win_tested.clip(min=0)}
    ds["gap_at_winning"] = ds.gap.isel(at).where(own_win_tested >= 0).drop_vars("level").assign_attrs(
        long_name="transferred minus own ticket at compare_level", units="1")
    ds["vs_random_at_winning"] = (ds.transfer_acc - ds.random_acc).isel(at).where(own_win_tested >= 0).drop_vars(
        "level").assign_attrs(long_name="transferred ticket minus random mask (same per-layer counts) at "
                                        "compare_level", units="1")
    verdict = rule_.transfer(ds, **params)
    ds["transfer_verdict"] = verdict_codes(verdict).assign_attrs(long_name=f"transfer verdict of rule {rule_.name}")
    ds["transfers"] = verdict.where(verdict >= 0).assign_attrs(
        long_name=f"the ticket transfers (1) or not (0) by rule {rule_.name}; NaN: undecided or not run")
    ds.attrs.update(metric=metric, **params, **rule_attrs(rule_, params), protocol=_protocols(runs, metric),
                    density_range=list(density_range), ci=ci)
    return self_describing(ds, "rgnet transfer matrix: tickets of source tasks trained on target tasks")


def _per_seed(ds: xr.Dataset, seeds: list[int], own_seed: np.ndarray, by_seed: dict, density_range, ci: float,
              seed: int) -> None:
    """The paired per-seed view of a transfer matrix (added to ``ds``): own and transferred tickets per seed, their
    gap per level with a t interval, and the gap averaged over the density range with t and bootstrap intervals."""
    lo, hi = density_range
    if not (0 <= lo < hi <= 1):
        raise ConfigError(f"density_range must be two densities 0 <= low < high <= 1, got {density_range}")
    if not 0 < ci < 1:
        raise ConfigError(f"ci must be a level between 0 and 1, got {ci}")
    shape = (ds.sizes["source"], ds.sizes["target"], len(seeds), ds.sizes["level"])
    tr = np.full(shape, np.nan)
    for (s, t, sd), rows in by_seed.items():
        tr[ds.indexes["source"].get_loc(s), ds.indexes["target"].get_loc(t), seeds.index(sd)] = _mean(rows)
    for j, t in enumerate(ds.target.values):  # the diagonal: a task's own ticket
        if t in ds.indexes["source"] and not any(k[0] == t and k[1] == t for k in by_seed):
            tr[ds.indexes["source"].get_loc(t), j] = own_seed[j]
    dims = ("source", "target", "seed", "level")
    ds.coords["seed"] = ("seed", seeds, {"long_name": "seed (target run; transfers are paired within a seed)"})
    ds["own_seed"] = (("target", "seed", "level"), own_seed, {"long_name": "target's own IMP ticket per seed"})
    ds["transfer_seed"] = (dims, tr, {"long_name": "transferred ticket per seed (into the target run of that seed)"})
    gap = ds.transfer_seed - ds.own_seed
    ds["gap_seed"] = gap.assign_attrs(long_name="transferred minus own ticket, same seed and level", units="1")
    ds["gap_ci"] = _t_interval(gap, "seed", ci).assign_attrs(
        long_name=f"{ci:g} t interval of the mean paired gap over seeds", units="1")
    dens = ds.density.mean("target")
    in_range = (ds.level > 0) & (dens > lo) & (dens <= hi)
    g = gap.where(in_range)
    has = g.notnull().any("seed")                       # levels a pair was measured at
    common = (g.notnull() | ~g.notnull().any("level")).all("seed") & has   # ... by every seed that has any
    per_seed = g.where(common).mean("level").where(common.any("level"))
    ds["gap_range_seed"] = per_seed.assign_attrs(
        long_name=f"paired gap averaged over the pruned levels with density in ({lo:g}, {hi:g}] the pair was "
                  "measured at by all its seeds", units="1")
    ds["gap_range"] = per_seed.mean("seed").assign_attrs(long_name="mean over seeds of gap_range_seed", units="1")
    ds["gap_range_ci"] = _t_interval(per_seed, "seed", ci).assign_attrs(
        long_name=f"{ci:g} t interval of gap_range over seeds", units="1")
    ds["gap_range_boot"] = _boot_interval(per_seed, "seed", ci, seed).assign_attrs(
        long_name=f"{ci:g} percentile bootstrap interval of gap_range over seeds", units="1")
    ds["range_levels"] = common.sum("level").assign_attrs(long_name="levels averaged in gap_range_seed")


def _t_interval(x: xr.DataArray, dim: str, ci: float) -> xr.DataArray:
    mean, half = mean_and_half_width(x, dim, 0.5 + ci / 2)
    return xr.concat([mean - half, mean + half], "bound").assign_coords(bound=["low", "high"]).transpose(..., "bound")


def _boot_interval(x: xr.DataArray, dim: str, ci: float, seed: int) -> xr.DataArray:
    from scipy.stats import bootstrap  # noqa: PLC0415

    other = [d for d in x.dims if d != dim]
    flat = x.transpose(*other, dim).values.reshape(-1, x.sizes[dim])
    out = np.full((len(flat), 2), np.nan)
    for i, row in enumerate(flat):
        v = row[np.isfinite(row)]
        if v.size > 1 and np.ptp(v) > 0:
            r = bootstrap((v,), np.mean, confidence_level=ci, method="percentile", n_resamples=1999,
                          random_state=np.random.default_rng(seed))
            out[i] = r.confidence_interval.low, r.confidence_interval.high
        elif v.size > 1:
            out[i] = v[0], v[0]
    shape = [x.sizes[d] for d in other] + [2]
    return xr.DataArray(out.reshape(shape), dims=(*other, "bound"),
                        coords={**{d: x[d] for d in other if d in x.coords}, "bound": ["low", "high"]})


def _density_at(density: xr.DataArray, level_index: xr.DataArray) -> xr.DataArray:
    """density at ``level_index`` (NaN where the index is -1)."""
    idx = level_index.clip(min=0)
    return density.isel(level=idx).where(level_index >= 0).drop_vars("level", errors="ignore")


def _source_label(attrs: dict, labels) -> str:
    """The source task's label; a dense-output or aligned transfer is its own arm (``default [aligned inputs]``)."""
    spec = json.loads(attrs["branch"])
    align = spec.get("align", "none")
    return (task_label(attrs["source_config"], labels) + (" [dense output]" if spec.get("output") == "dense" else "")
            + ("" if align == "none" else f" [aligned {align}]"))


def _pad(a: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([a, np.full(n - len(a), np.nan)]) if len(a) < n else a


def _mean(a) -> np.ndarray:
    """Mean over the first axis ignoring NaN (all-NaN columns give NaN, silently)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.asarray(a), 0)


def _std(a) -> np.ndarray:
    """Sample std (ddof 1) over the first axis ignoring NaN; NaN where fewer than two values."""
    a = np.asarray(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.where(np.sum(~np.isnan(a), 0) > 1, np.nanstd(a, 0, ddof=1), np.nan)


def protocol(config: str | dict, task: str | None = None) -> str:
    """The training protocol a run's accuracies come from, in words: data split, budget, early stopping."""
    cfg = json.loads(config) if isinstance(config, str) else config
    t = cfg["train"]
    stop = STOP_RULES.get(t.get("early_stop", "val_loss"), t.get("early_stop", "val_loss"))
    text = (f"{t['steps']} steps per level ({t['optimizer']} lr {t['lr']:g}, batch {t['batch_size']}); early stop "
            f"at the {stop}, evaluated every {t['eval_every']} iterations")
    if task:
        n = json.loads(task)
        text = f"data {n['n_train']} train / {n['n_val']} validation / {n['n_test']} test; " + text
    return text


def _protocols(runs: list[xr.Dataset], metric: str) -> str:
    """The protocol shared by the runs (or each one, marked as mixed) and what the metric reads."""
    found = list(dict.fromkeys(r.attrs["protocol"] for r in runs))
    what = ("test accuracy at the early-stop iteration" if metric == "test_acc" else
            "test accuracy at the end of training" if metric == "test_acc_final" else metric)
    shared = found[0] if len(found) == 1 else "MIXED, compare with care: " + " | ".join(found)
    return f"{shared}; verdicts read the {what}"
