"""The universality analysis end to end: signatures -> distances -> same-class tests -> classes -> predicted
transfer, scored against the measured transfer matrix next to the baselines. One Dataset out."""

from __future__ import annotations

import itertools
import json
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from rgnet.catalog import index_labels
from rgnet.config import TaskConfig
from rgnet.errors import ConfigError, DataError, StoreError
from rgnet.progress import Stages
from rgnet.store.writer import check_run_file
from rgnet.tasks import symmetric, task_label
from rgnet.universality._runs import LoadedRun, RunSource, task_params, to_runs
from rgnet.universality.baselines import (
    additive_scores,
    excess_mask_iou,
    input_distance,
    pooled_spectrum,
    spectral_w1_scores,
    task_mean,
)
from rgnet.universality.classes import (
    CLASS_METHODS,
    bootstrap_tests,
    class_graph,
    classes,
    resample_seeds,
    same_class,
    same_class_test,
    share_of,
)
from rgnet.universality.distances import UNEQUAL, run_distances
from rgnet.universality.scoring import holm, pair_auroc, score_matrix
from rgnet.universality.signatures import SIGNATURES, pooled_exponents, signatures, weight_trajectory
from rgnet.verdicts import transfer_matrix

PERMUTE = ("within_seed", "runs")
GAP = "gap_range"   # the measured transfer as a number (rgnet.verdicts.transfer_matrix)
SYMMETRY_NOTE = (
    "A fixed permutation of the input features maps one task onto the other exactly: the IMP flow of the "
    "permuted task is, over random initialisations, the flow of the original with the first layer's columns "
    "permuted. Every "
    "permutation-invariant signature - weight histograms and their W1 flow, quantiles, couplings, exponents, "
    "error curves, and DMD spectra (eigenvalues do not change under a fixed orthogonal change of coordinates "
    "theta -> P theta) - is blind to it, so the class analysis can at best say 'same class'. The correct "
    "reading is 'same class up to the symmetry': the ticket should transfer once its first-layer columns are "
    "permuted, while the unpermuted mask need not (the measured verdict). Mask overlap and the input-distribution "
    "distance are not permutation-invariant and can see the difference.")


def universality(sources: RunSource | Iterable[RunSource], transfer: str | os.PathLike | xr.Dataset | None = None,
                 names: Sequence[str] | None = None, labels: dict[str, str] | None = None, alpha: float = 0.1,
                 class_method: str = "components", n_boot: int = 200, options: dict[str, dict] | None = None,
                 unequal: str = "pad", baselines: bool = True, n_perm: int = 9999, seed: int = 0,
                 permute: str = "within_seed", signature_seeds: Sequence[int] | None = None,
                 log: Callable[[str], None] | None = None) -> xr.Dataset:
    """Universality classes of the runs' IMP flows, and their prediction of ticket transfer, scored.

    Parameters
    ----------
    sources : run files (paths, glob, directory), run Datasets, or :class:`~rgnet.universality._runs.LoadedRun` objects
    transfer : the measured transfer matrix: a Dataset from :func:`rgnet.transfer_matrix`, or a netCDF file
        holding one (group ``transfer``, as ``rgnet tickets --out`` writes; its ``tickets`` group, if present,
        names the runs' tasks). Default: computed from the run files' transfer branches.
    names : signatures to use (default: every registered one the files have data for)
    labels : renames task keys (or run ids) to short task names
    alpha : level of the same-class test (an edge joins two tasks when p > alpha)
    class_method : ``components`` or ``communities``
    n_boot : seed bootstraps for the class shares and the AUROC intervals
    options : per signature, keyword options of its function
    unequal : how spectra of unequal size are compared (see :mod:`rgnet.universality.distances`)
    baselines : also score the baselines
    n_perm, seed : random splits / task permutations when exhaustive enumeration is too large; seed of all draws
    permute : ``within_seed`` (default): the same-class test exchanges task labels only between runs of one seed,
        which share their initialisation across tasks; ``runs``: between any runs (valid only when seeds are
        independent across tasks)
    signature_seeds : out-of-sample scoring: signatures, classes and the baselines that read runs come from the
        runs of these seeds, the measured transfer from the run files of the other seeds (``transfer`` must then
        be left out)
    log : called with a line as each stage starts (runs loaded, each signature, distances, same-class tests,
        bootstraps, baselines, scoring) and every :data:`rgnet.progress.PACE` seconds within a long loop, the time
        elapsed in front (:class:`rgnet.progress.Stages`); default silent

    Returns
    -------
    xr.Dataset
        Per signature: ``distance(signature, run, run2)``, ``statistic``, ``p_value``, ``between``,
        ``same_class`` and ``class_share`` with dims ``(signature, task, other)``, ``class_id(signature, task)``.
        Per predictor (signatures, their binary class verdicts, baselines): ``score(predictor, source, target)``
        and the table ``auroc``, ``auroc_ci(predictor, bound)``, ``p_auroc``, ``tau_w``, ``p_tau``,
        ``loto_balanced_accuracy``, ``auroc_without_symmetry``. The measured ``transfers`` and ``gap``
        ``(source, target)``, ``symmetry(source, target)``; pooled ``task_exponent(task, exponent_mode)`` when
        the exponents signature is used. Attributes ``alpha``, ``class_method``, ``unavailable`` (JSON: what could
        not be computed, and why), ``symmetry_note``.
    """
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be between 0 and 1, got {alpha}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ConfigError(f"n_boot (--n-boot) must be a whole number of seed bootstraps, 1 or more, got {n_boot}")
    if class_method not in CLASS_METHODS:
        raise ConfigError(f"unknown class method {class_method!r}; choose one of {', '.join(CLASS_METHODS)}")
    if permute not in PERMUTE:
        raise ConfigError(f"unknown permute={permute!r}; choose one of {', '.join(PERMUTE)}")
    if unequal not in UNEQUAL:
        raise ConfigError(f"unknown unequal={unequal!r}; choose one of {', '.join(UNEQUAL)}")
    unknown = [n for n in names or [] if n not in SIGNATURES]
    if unknown:
        raise ConfigError(f"unknown signature(s) {', '.join(unknown)}; choose from {', '.join(SIGNATURES)}")
    say = Stages.of(log)
    measured = None
    if isinstance(transfer, (str, os.PathLike)):
        measured, file_labels = read_transfer(transfer)
        labels = {**file_labels, **(labels or {})}
    elif isinstance(transfer, xr.Dataset):
        measured = transfer
    if not isinstance(sources, xr.Dataset):
        labels = {**(index_labels(sources) or {}), **(labels or {})}   # a sweep index names its tasks
    runs = to_runs(sources, labels, log=say)
    if signature_seeds is not None:
        if transfer is not None:
            raise ConfigError("signature_seeds splits the run files into seeds for the signatures and seeds for the "
                              "measured transfer; leave the transfer file out (it is computed from the runs)")
        keep = set(signature_seeds)
        gap_runs = [r for r in runs if r.seed not in keep]
        runs = [r for r in runs if r.seed in keep]
        if not runs or not gap_runs:
            raise ConfigError(f"signature_seeds {sorted(keep)} leave no runs for the "
                              f"{'signatures' if not runs else 'measured transfer'}; name some of the runs' seeds")
        measured = _measured_from_files(gap_runs, labels, say)
    label_arr = np.array([r.task for r in runs])
    tasks = sorted(set(label_arr))
    few = [t for t in tasks if np.sum(label_arr == t) < 2]
    if len(tasks) < 2 or few:
        raise ConfigError(f"the same-class test needs at least 2 tasks with at least 2 runs (seeds) each; "
                          f"{'task(s) ' + ', '.join(few) + ' have one run' if few else 'all runs have one task'}")
    say(f"loaded {len(runs)} runs of {len(tasks)} tasks")  # after the checks: a refusal stays one line
    if transfer is None and signature_seeds is None:
        measured = _measured_from_files(runs, labels, say)
    unavailable: dict[str, str] = {}
    scored = _scored_tasks(measured, tasks, unavailable)

    sigs = signatures(runs, names, options=options, skipped=unavailable if names is None else None, log=say)
    if not sigs:
        raise DataError("no signature could be computed from these files; record runs with tensors or pass "
                        "--signature with one of dmd_coarse, exponents, fingerprint, scaling")
    blocks = np.array([r.seed for r in runs]) if permute == "within_seed" else None
    rng = np.random.default_rng(seed)
    idx_boot = [resample_seeds(label_arr, rng) for _ in range(n_boot)]

    per_sig, predictors = [], {}
    for i, (name, sig) in enumerate(sigs.items(), 1):
        say(f"classes by {name} ({i} of {len(sigs)}): distances between {len(runs)} runs")
        dist = run_distances(sig, unequal)
        say(f"classes by {name}: same-class tests of {len(tasks)} tasks")
        test = same_class_test(dist, n_perm=n_perm, seed=seed, blocks=blocks)
        same = same_class(test, alpha, class_method)
        say(f"classes by {name}: {n_boot} seed bootstraps")
        boot = []
        for b, (_, t) in enumerate(bootstrap_tests(dist, n_boot, seed=seed), 1):
            boot.append(t)
            say.paced(f"classes by {name}: bootstrap {b} of {n_boot}")
        ids = classes(class_graph(test, alpha), class_method)
        per_sig.append(xr.Dataset({
            "distance": dist.drop_vars([c for c in dist.coords if c not in ("run",)]),
            **{v: test[v] for v in ("statistic", "p_value", "p_value_randomised", "p_min", "between")},
            "same_class": same, "class_share": share_of(boot, alpha, class_method),
            "class_id": ("task", [ids[t] for t in tasks], {"long_name": f"class ({class_method})"}),
        }).expand_dims(signature=[name]))
        if scored:
            sel = {"task": scored, "other": scored}
            predictors[name] = ("signature", -test["statistic"].sel(sel).values,
                                [-t["statistic"].sel(sel).values for t in boot])
            predictors[f"{name} (class)"] = ("class", same.sel(sel).values.astype(float),
                                             [same_class(t, alpha, class_method).sel(sel).values.astype(float)
                                              for t in boot])
    out = xr.concat(per_sig, dim="signature", join="outer", combine_attrs="drop_conflicts")
    out = out.assign_coords(run_task=("run", label_arr), run_seed=("run", [r.seed for r in runs]),
                            run_id=("run", [r.run_id for r in runs]), run_path=("run", [r.path for r in runs]))
    if "exponents" in sigs:
        say("exponents pooled per task")
        pooled = pooled_exponents(runs, **(options or {}).get("exponents", {}))
        out["task_exponent"] = pooled["exponent"].rename(mode="exponent_mode")
        out["task_exponent_ci"] = pooled["exponent_ci"].rename(mode="exponent_mode")
        out["task_exponent"].attrs.update(long_name="exponent pooled over the task's runs (bootstrap over runs)")

    if scored:
        if baselines:
            predictors.update(_baselines(runs, label_arr, scored, measured, idx_boot, unavailable, say))
        scores = _scoring(predictors, scored, measured, seed, n_perm, runs, say)
        out = out.merge(scores)
        out.attrs.update(scores.attrs)
    out.attrs.update(signature_seeds=json.dumps(sorted(signature_seeds) if signature_seeds is not None else "all"))
    out.attrs.update(alpha=alpha, class_method=class_method, n_boot=n_boot, unequal=unequal, permute=permute,
                     unavailable=json.dumps(unavailable), symmetry_note=SYMMETRY_NOTE,
                     test="energy statistic, permutation over runs (exact when <= 20000 splits)")
    say("universality done")
    return out


def read_transfer(path: str | os.PathLike) -> tuple[xr.Dataset, dict[str, str]]:
    """The transfer matrix in a netCDF file (group ``transfer`` or the root) and run-id -> task names from its
    ``tickets`` group (plus task key -> name for the runs it lists whose files are readable here)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"transfer file {str(p)!r} does not exist; pass the verdicts file written by "
                        "`rgnet tickets --out` or leave --transfer out to compute it from the run files")
    measured = None
    for group in ("transfer", None):
        try:
            ds = xr.open_dataset(p, engine="h5netcdf", group=group).load()
        except (OSError, ValueError):
            continue
        if "transfers" in ds and "gap_at_winning" in ds:
            measured = ds
            break
    if measured is None:
        raise DataError(f"{str(p)!r} holds no transfer matrix (variables transfers and gap_at_winning); pass "
                        "the file written by `rgnet tickets --out` for runs with transfer branches")
    labels: dict[str, str] = {}
    try:
        tickets = xr.open_dataset(p, engine="h5netcdf", group="tickets")
        names = tickets["run_experiment"].values.astype(str)
        labels.update(zip(tickets["run_id"].values.astype(str), names))
        for file, name in zip(tickets["path"].values.astype(str), names):
            if Path(file).is_file():
                labels[task_label(check_run_file(Path(file))["config"])] = name
    except (OSError, KeyError, ValueError, StoreError):
        pass
    return measured, labels


def _measured_from_files(runs: Sequence[LoadedRun], labels, say: Stages) -> xr.Dataset | None:
    paths = [r.path for r in runs if r.path]
    if len(paths) < len(runs):
        return None
    say(f"measured transfer from the branches of {len(paths)} run files")
    return transfer_matrix(paths, labels=labels)


def _scored_tasks(measured: xr.Dataset | None, tasks: list[str], unavailable: dict) -> list[str]:
    """Tasks that are both sources and targets of measured transfers (at least 3, with off-diagonal verdicts)."""
    if measured is None:
        unavailable["scoring"] = "no transfer matrix (pass one, or run files with transfer branches)"
        return []
    common = [t for t in tasks if t in measured["source"].values and t in measured["target"].values]
    if len(common) < 3:
        unavailable["scoring"] = (f"the transfer matrix and the runs share {len(common)} task(s) "
                                  f"({', '.join(common) or 'none'}); scoring needs 3 - runs: {', '.join(tasks)}; "
                                  f"matrix: {', '.join(map(str, measured['target'].values))}")
        return []
    t = measured["transfers"].sel(source=common, target=common).values
    if not np.isfinite(t[~np.eye(len(common), dtype=bool)]).any():
        unavailable["scoring"] = "the transfer matrix has no measured pair between different tasks"
        return []
    return common


def _baselines(runs, labels, scored, measured, idx_boot, unavailable, say: Stages) -> dict:
    seeds = np.array([r.seed for r in runs])
    out = {}
    say("baseline mask_iou")
    try:
        iou = excess_mask_iou(runs)
        out["mask_iou"] = ("baseline", task_mean(iou, labels, seeds, scored, same_seed=True),
                           [task_mean(iou[np.ix_(i, i)], labels[i], seeds[i], scored, True) for i in idx_boot])
    except DataError as e:
        unavailable["mask_iou"] = str(e)
    cfgs = task_params(runs)
    say("baseline input_distance")
    dist = input_distance({t: cfgs[t] for t in scored})
    if np.isfinite(dist[~np.eye(len(scored), dtype=bool)]).any():
        out["input_distance"] = ("baseline", -dist, [])
    else:
        unavailable["input_distance"] = "the tasks' data could not be loaded here (image files missing?)"
    say("baselines dense_accuracy, additive")
    acc = np.array([float(r.ds["val_acc"].isel(level=0)) for r in runs])   # not the verdicts' test accuracy

    def dense(i):
        m = np.array([acc[i][labels[i] == t].mean() for t in scored])
        return -np.abs(m[:, None] - m[None, :])

    everyone = np.arange(len(runs))
    out["dense_accuracy"] = ("baseline", dense(everyone), [dense(i) for i in idx_boot])
    out["additive"] = ("baseline", additive_scores(measured["transfers"].sel(source=scored, target=scored).values), [])
    say(f"baseline spectral_w1_2302 ({len(idx_boot)} seed bootstraps)")
    try:
        source = "trained"
        traj = _output_trajectories(runs, source)
    except DataError:
        source = "ticket"
        traj = _output_trajectories(runs, source)

    cache: dict[tuple, np.ndarray] = {}

    def pooled(members: tuple) -> np.ndarray:  # a resample repeats runs: few distinct multisets per task
        if members not in cache:
            cache[members] = pooled_spectrum([traj[k] for k in members])
        return cache[members]

    def spectral(i):
        return spectral_w1_scores({t: pooled(tuple(sorted(k for k in i if labels[k] == t))) for t in scored}, scored)

    name = "spectral_w1_2302" + ("" if source == "trained" else " [ticket weights]")
    boot = []
    for b, i in enumerate(idx_boot, 1):
        boot.append(spectral(i))
        say.paced(f"baseline spectral_w1_2302: bootstrap {b} of {len(idx_boot)}")
    out[name] = ("baseline", spectral(everyone), boot)
    return out


def _output_trajectories(runs: Sequence[LoadedRun], source: str) -> list[xr.DataArray]:
    """Each run's output-layer trajectory (the last prunable layer), as 2302.09160 uses."""
    return [weight_trajectory(r, source, [str(r.ds["layer"].values[-1])]) for r in runs]


def symmetry_pairs(runs: Sequence[LoadedRun], tasks: Sequence[str]) -> list[tuple[str, str, list[str]]]:
    """Pairs of tasks that differ only in parameters their task declares as input permutations
    (:func:`rgnet.tasks.symmetric`), with those parameters."""
    cfgs = {t: TaskConfig(c["name"], c["params"]) for t, c in task_params(runs).items()}
    pairs = []
    for a, b in itertools.combinations(tasks, 2):
        diff = symmetric(cfgs[a], cfgs[b])
        if diff:
            pairs.append((a, b, diff))
    return pairs


def _scoring(predictors: dict, scored: list[str], measured: xr.Dataset, seed: int, n_perm: int,
             runs: Sequence[LoadedRun], say: Stages) -> xr.Dataset:
    sel = {"source": scored, "target": scored}
    transfers = measured["transfers"].sel(sel).values.astype(float)
    gap = measured[GAP].sel(sel).values.astype(float) if GAP in measured else \
        measured["gap_at_winning"].sel(sel).values.astype(float)   # verdict files written before gap_range
    symmetric = np.zeros_like(transfers, bool)
    for a, b, _ in symmetry_pairs(runs, scored):
        i, j = scored.index(a), scored.index(b)
        symmetric[i, j] = symmetric[j, i] = True
    no_sym = np.where(symmetric, np.nan, transfers)
    names = list(predictors)
    rows = {}
    for i, (n, (_, s, boot)) in enumerate(predictors.items(), 1):
        say(f"scoring {n} ({i} of {len(predictors)})")
        rows[n] = score_matrix(s, transfers, gap, boot, n_perm=n_perm, seed=seed)
    for n, (_, s, _) in predictors.items():
        rows[n]["auroc_without_symmetry"] = pair_auroc(s, no_sym)
    col = lambda key: ("predictor", [rows[n][key] for n in names])  # noqa: E731
    ds = xr.Dataset({
        "score": (("predictor", "source", "target"), np.stack([predictors[n][1] for n in names]),
                  {"long_name": "predicted transfer score (higher: predicted to transfer)"}),
        "auroc": col("auroc") + ({"long_name": "AUROC of the score for the measured transfers verdict",
                                  "units": "1"},),
        "auroc_ci": (("predictor", "bound"), [[rows[n]["auroc_lower"], rows[n]["auroc_upper"]] for n in names],
                     {"long_name": "95% interval of the AUROC over seed bootstraps of the predictor "
                                   "(the measured matrix held fixed; no interval: the predictor has no seeds)"}),
        "p_auroc": col("p_auroc") + ({"long_name": "Mantel permutation p-value of the AUROC (task labels "
                                                   "permuted, rows and columns together)"},),
        "tau_w": col("tau_w") + ({"long_name": "weighted Kendall tau of score vs the measured gap per target, "
                                               "mean over targets"},),
        "tau_targets": col("tau_targets") + ({"long_name": "targets averaged in tau_w"},),
        "p_tau": col("p_tau") + ({"long_name": "Mantel permutation p-value of tau_w"},),
        "p_tau_holm": ("predictor", holm([rows[n]["p_tau"] for n in names]),
                       {"long_name": "p_tau, Holm-adjusted over the predictors scored"}),
        "tau_task_ci": (("predictor", "bound"), [[rows[n]["tau_task_lower"], rows[n]["tau_task_upper"]] for n in names],
                        {"long_name": "95% interval of tau_w over tasks drawn with replacement"}),
        "auroc_task_ci": (("predictor", "bound"),
                          [[rows[n]["auroc_task_lower"], rows[n]["auroc_task_upper"]] for n in names],
                          {"long_name": "95% interval of the AUROC over tasks drawn with replacement"}),
        "rho_gap": col("rho_gap") + ({"long_name": "Spearman rho of the score vs the measured gap, all pairs"},),
        "beyond": col("beyond") + ({"long_name": "correlation of score and gap residuals after source and target "
                                                 "effects (least squares)"},),
        "p_beyond": col("p_beyond") + ({"long_name": "Mantel permutation p-value of beyond"},),
        "p_beyond_holm": ("predictor", holm([rows[n]["p_beyond"] for n in names]),
                          {"long_name": "p_beyond, Holm-adjusted over the predictors scored"}),
        "loto_balanced_accuracy": col("loto_balanced_accuracy") + (
            {"long_name": "balanced accuracy with leave-one-task-out thresholds", "units": "1"},),
        "auroc_without_symmetry": col("auroc_without_symmetry") + (
            {"long_name": "AUROC without the pairs related by a feature permutation", "units": "1"},),
        "predictor_kind": ("predictor", [predictors[n][0] for n in names]),
        "transfers": (("source", "target"), transfers, {"long_name": "measured verdict: the ticket transfers"}),
        "gap": (("source", "target"), gap, {"long_name": "measured gap (gap_range: transferred minus own ticket, "
                                                          "same seed and level, over the pruned levels)",
                                            "units": "1"}),
        "symmetry": (("source", "target"), symmetric, {"long_name": "tasks related by a fixed permutation of the "
                                                                    "input features"}),
    }, coords={"predictor": names, "source": scored, "target": scored, "bound": ["lower", "upper"]})
    # distances and classes are symmetric; the verdicts need not be: the best ranking a symmetric score can give
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # pairs undecided both ways stay NaN
        ds.attrs["symmetric_oracle_auroc"] = pair_auroc(np.nanmean([transfers, transfers.T], axis=0), transfers)
    return ds
