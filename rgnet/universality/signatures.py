"""Signatures of one IMP run: what a universality class is judged by. One function each, one registry.

Every signature function takes a :class:`~rgnet.universality._runs.LoadedRun` and keyword options and returns an
``xr.Dataset`` without a ``run`` dim; :func:`signatures` stacks them along ``run`` (coordinates ``task``,
``seed``, ``run_id``, ``path``). Each registered signature names the distance it is compared with
(:mod:`rgnet.universality.distances`): ``spectrum`` (W1 between eigenvalue sets), ``standardised``
(exponent vectors over their bootstrap errors) or ``l2`` (root-mean-square difference of a vector).

Register a new one with::

    @register_signature("my_sig", distance="l2", doc="...")
    def my_sig(run, **options) -> xr.Dataset:  # a ``vector(component)`` variable
        ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy.special import ndtri

from rgnet.errors import ConfigError, DataError
from rgnet.progress import Stages
from rgnet.rg import couplings, dmd, linearise, microscopic, wasserstein_flow
from rgnet.rg.dmd import numerical_rank
from rgnet.rg.relevance import KINDS, relevance_flow, run_relevance
from rgnet.rg.trajectory import as_runs, snapshot_pairs
from rgnet.universality._runs import LoadedRun, RunSource, run_coords, to_runs

DISTANCES = ("spectrum", "standardised", "l2")


@dataclass(frozen=True)
class Signature:
    """A registered signature: ``compute(run, **options) -> Dataset`` and the distance that compares it."""

    name: str
    compute: Callable[..., xr.Dataset]
    distance: str
    doc: str
    needs: str = "summaries"  # or "tensors": needs trained weights (or masks) stored in the run file


SIGNATURES: dict[str, Signature] = {}


def register_signature(name: str, distance: str, doc: str, needs: str = "summaries"):
    """Decorator adding ``fn(run, **options) -> xr.Dataset`` to :data:`SIGNATURES` under ``name``."""
    if distance not in DISTANCES:
        raise ConfigError(f"unknown distance {distance!r}; choose one of {', '.join(DISTANCES)}")

    def deco(fn):
        SIGNATURES[name] = Signature(name, fn, distance, doc, needs)
        return fn

    return deco


def signatures(sources: RunSource | Iterable[RunSource] | Sequence[LoadedRun], names: Sequence[str] | None = None,
               labels: dict[str, str] | None = None, options: dict[str, dict] | None = None,
               skipped: dict[str, str] | None = None, log: Callable[[str], None] | None = None
               ) -> dict[str, xr.Dataset]:
    """Compute signatures for many runs.

    Parameters
    ----------
    sources : run files, a glob, a directory, run Datasets or :class:`LoadedRun` objects
    names : signature names (default: all of :data:`SIGNATURES`)
    labels : renames task keys or run ids to short task names
    options : per signature name, keyword options of its function (e.g. ``{"dmd_micro": {"layers": ["fc3"]}}``)
    skipped : if given, signatures the runs lack data for (no tensors, too few levels) are left out and the
        reason is stored here under their name, instead of raising :class:`DataError` / :class:`ConfigError`
    log : called with a line as each signature starts, and with the run reached every
        :data:`rgnet.progress.PACE` seconds (:class:`rgnet.progress.Stages`); default silent

    Returns
    -------
    dict of name -> xr.Dataset
        Each with a leading ``run`` dim and coordinates ``task(run)``, ``seed(run)``, ``run_id(run)``,
        ``path(run)``; attributes ``signature``, ``distance`` and ``options`` (JSON).
    """
    say = Stages.of(log)
    runs = to_runs(sources, labels, log=say)
    names = list(SIGNATURES) if names is None else list(names)
    unknown = [n for n in names if n not in SIGNATURES]
    if unknown:
        raise ConfigError(f"unknown signature(s) {', '.join(unknown)}; choose from {', '.join(SIGNATURES)}")
    out = {}
    for i, name in enumerate(names, 1):
        sig = SIGNATURES[name]
        opts = (options or {}).get(name, {})
        say(f"signature {name} ({i} of {len(names)}) of {len(runs)} runs")
        try:
            parts = []
            for k, r in enumerate(runs, 1):
                say.paced(f"signature {name}: run {k} of {len(runs)}")
                parts.append(sig.compute(r, **opts))
        except (DataError, ConfigError) as err:
            if skipped is None:
                raise
            skipped[name] = str(err)
            continue
        ds = xr.concat(parts, dim="run", join="outer", combine_attrs="drop_conflicts")
        ds = ds.assign_coords(run_coords(runs))
        ds.attrs.update(signature=name, distance=sig.distance, description=sig.doc,
                        options=repr(sorted(opts.items())))
        out[name] = ds
    return out


# ---- spectra -------------------------------------------------------------------------------------------


def spectrum(traj: xr.DataArray, rank: int | None = None, delays: int = 0, method: str = "exact") -> xr.Dataset:
    """Koopman/DMD spectrum of a trajectory ``(level, feature)`` (or ``(run, level, feature)``, pairs pooled over
    runs): eigenvalues with their mode amplitudes.

    ``rank=None`` uses the Gavish-Donoho hard threshold (see :func:`rgnet.rg.dmd`); a fixed ``rank`` above the
    numerical rank of the snapshots is lowered to it (recorded in ``attrs["rank"]``).

    Returns
    -------
    xr.Dataset
        ``eigenvalues(mode)`` (complex, by decreasing modulus, unitless per level) and ``amplitudes(mode)``
        (complex amplitudes of the level-0 snapshot in the unit-norm modes, units of the features).
    """
    if rank is not None:
        x = snapshot_pairs(np.asarray(as_runs(traj).values, float), delays)[0].T
        rank = max(1, min(int(rank), numerical_rank(np.linalg.svd(x, compute_uv=False), x.shape)))
    fit = dmd(traj, rank=rank, delays=delays, method=method)
    return xr.Dataset(
        {"eigenvalues": fit["eigenvalues"].assign_attrs(long_name="DMD eigenvalue of the IMP flow", units="1"),
         "amplitudes": fit["amplitudes"].assign_attrs(long_name="amplitude of the level-0 snapshot in the mode")},
        attrs={"rank": int(fit.attrs["rank"]), "delays": int(delays), "method": method})


def weight_trajectory(run: LoadedRun, source: str = "trained", layers: Sequence[str] | None = None) -> xr.DataArray:
    """Microscopic trajectory ``(level, component)`` of one run.

    ``source="trained"``: the trained weights of every level (``tensors/trained``; :func:`rgnet.rg.microscopic`,
    biases included). ``source="ticket"``: the rewound tickets ``mask_n * theta_rewind`` of the prunable weights,
    which every run file holds: fixed by the masks, they see where IMP removes weights, not how the survivors
    are retrained. ``layers`` selects layers (``["fc3"]``), default all.
    """
    if source == "trained":
        return microscopic(run.tensors("trained"), layers)
    if source != "ticket":
        raise ConfigError(f"unknown weight source {source!r}; choose trained or ticket")
    masks, rewind = run.tensors("mask"), run.tensors("rewind")
    names = [n for n in masks.data_vars if layers is None or n in layers]
    if not names:
        raise ConfigError(f"no prunable layer matches {list(layers or [])}; the run has {list(masks.data_vars)}")
    blocks = []
    for n in names:
        m = np.asarray(masks[n].transpose("level", ...).values, float)
        w = np.asarray(rewind[f"{n}.weight"].values, float)
        blocks.append((m * w[None]).reshape(m.shape[0], -1))
    return xr.DataArray(np.concatenate(blocks, axis=1), dims=("level", "component"), name="weights",
                        attrs={"long_name": "rewound ticket weights (pruned entries are zero)", "units": "1"})


@register_signature("dmd_micro", "spectrum", "Koopman/DMD spectrum of the flattened trained weights (Redman et al.)",
                    needs="tensors")
def dmd_micro(run: LoadedRun, layers: Sequence[str] | None = None, delays: int = 0, rank: int | None = None,
              method: str = "exact") -> xr.Dataset:
    """DMD of the trained weights per level (``tensors/trained``; ``layers`` e.g. ``["fc3"]``, default all)."""
    return spectrum(weight_trajectory(run, "trained", layers), rank, delays, method)


@register_signature("dmd_ticket", "spectrum", "DMD spectrum of the rewound tickets (mask x rewind weights) per level",
                    needs="tensors")
def dmd_ticket(run: LoadedRun, layers: Sequence[str] | None = None, delays: int = 0, rank: int | None = None,
               method: str = "exact") -> xr.Dataset:
    """DMD of the tickets ``mask_n * theta_rewind`` (see :func:`weight_trajectory`), in every run file."""
    return spectrum(weight_trajectory(run, "ticket", layers), rank, delays, method)


@register_signature("dmd_coarse", "spectrum", "DMD spectrum of the coupling trajectory (log std per layer)")
def dmd_coarse(run: LoadedRun, kind: str | Sequence[str] = "scale", delays: int = 0, rank: int | None = None,
               method: str = "exact") -> xr.Dataset:
    """DMD of the coarse-grained couplings (:func:`rgnet.rg.couplings`, default ``scale``: ln std per layer)."""
    return spectrum(couplings(run.ds, kind), rank, delays, method)


# ---- exponents -----------------------------------------------------------------------------------------


@register_signature("exponents", "standardised", "RG exponents y = ln|lambda| / ln b of the linearised map, "
                    "with bootstrap errors")
def exponents(run: LoadedRun, kind: str | Sequence[str] = "scale", n_boot: int = 200, method: str = "ols",
              ci: float = 0.95, seed: int = 0) -> xr.Dataset:
    """Exponents of one run's linearised RG map (:func:`rgnet.rg.linearise`, snapshot pairs bootstrapped)."""
    lin = linearise(couplings(run.ds, kind), n_boot=n_boot, method=method, ci=ci, seed=seed)
    return exponent_dataset(lin, ci)


def exponent_dataset(lin: xr.Dataset, ci: float = 0.95) -> xr.Dataset:
    """``exponent(mode)`` and its standard error from a :func:`~rgnet.rg.linearise` result (non-finite -> NaN)."""
    y = np.asarray(lin["exponents"].values, float)
    lo, hi = np.asarray(lin["exponents_ci"].values, float).T
    z = ndtri(0.5 + ci / 2)
    with np.errstate(invalid="ignore"):
        se = (hi - lo) / (2 * z)
    y, se = np.where(np.isfinite(y), y, np.nan), np.where(np.isfinite(se), se, np.nan)
    return xr.Dataset({
        "exponent": (("mode",), y, {"long_name": "y = ln|lambda| / ln b", "units": "1"}),
        "exponent_se": (("mode",), se, {"long_name": f"bootstrap standard error ({ci:.0%} interval / 2z)",
                                        "units": "1"}),
        "exponent_ci": (("mode", "bound"), np.stack([lo, hi], 1), {"long_name": f"{ci:.0%} bootstrap interval"}),
    }, coords={"mode": np.arange(len(y)), "bound": ["lower", "upper"]},
        attrs={"scale_factor": float(lin.attrs["scale_factor"])})


def pooled_exponents(runs: Sequence[LoadedRun], kind: str | Sequence[str] = "scale", n_boot: int = 200,
                     method: str = "ols", ci: float = 0.95, seed: int = 0) -> xr.Dataset:
    """Exponents per task from snapshot pairs pooled over the task's runs, bootstrapped over runs.

    Returns ``exponent(task, mode)``, ``exponent_se(task, mode)``, ``exponent_ci(task, mode, bound)``; a task
    with too few pairs for the fit gets NaN.
    """
    tasks = sorted({r.task for r in runs})
    parts = []
    for t in tasks:
        members = [r.ds for r in runs if r.task == t]
        traj = xr.concat([couplings(ds, kind) for ds in members], dim="run", join="outer")
        try:
            parts.append(exponent_dataset(linearise(traj, n_boot=n_boot, method=method, ci=ci, seed=seed), ci))
        except ConfigError:
            parts.append(xr.Dataset())
    out = xr.concat(parts, dim="task", join="outer", combine_attrs="drop_conflicts").assign_coords(task=tasks)
    return out.assign_attrs(description="pooled over the runs of each task; bootstrap over runs")


# ---- vectors -------------------------------------------------------------------------------------------

def _vector(values: np.ndarray, names: list[str], long_name: str) -> xr.Dataset:
    """A signature compared by the l2 distance: ``vector(component)``."""
    return xr.Dataset({"vector": (("component",), np.asarray(values).ravel(), {"long_name": long_name, "units": "1"})},
                      coords={"component": names})


@register_signature("fingerprint", "l2", "distribution-flow fingerprint: W1 of w/std between successive levels")
def fingerprint(run: LoadedRun, variable: str = "hist") -> xr.Dataset:
    """``w1_shape`` of :func:`rgnet.rg.wasserstein_flow` per (step, layer), flattened to ``vector(component)``."""
    w = wasserstein_flow(run.ds, variable)["w1_shape"].transpose("level", "layer")
    names = [f"{lv}:{layer}" for lv in w.level.values for layer in w.layer.values]
    return _vector(w.values, names, "W1 between rescaled weight distributions of levels n and n+1")


@register_signature("scaling", "standardised", "error-vs-density scaling: slope of ln(error) against -ln(density) "
                    "after the plateau, and the knee (Rosenfeld et al. 2006.10621)")
def scaling(run: LoadedRun, metric: str = "val_acc") -> xr.Dataset:
    """Hinge fit of ``ln err = c + gamma * max(0, x - x_k)`` with ``x = -ln density`` and ``err = 1 - acc``.

    The knee ``x_k`` is the level (of those leaving at least two points after it) that minimises the squared
    error; ``gamma`` is the power-law exponent of the error between the low-error plateau and the end of the
    flow (``err ~ density^-gamma``). Both get NaN standard errors, so the standardised distance scales them by
    their spread over all runs (a label-free scale, which keeps the permutation test valid). The validation
    accuracy by default: the test accuracy is what the verdicts are measured on, and a signature must not see it.
    """
    if metric not in run.ds:
        raise ConfigError(f"the run has no metric {metric!r}; use val_acc (or test_acc, which the verdicts use)")
    err = 1.0 - np.asarray(run.ds[metric].values, float)
    x = -np.log(np.asarray(run.ds["density"].values, float))
    ok = np.isfinite(err) & np.isfinite(x) & (err > 0)
    x, y = x[ok], np.log(err[ok])
    best = (np.inf, np.nan, np.nan)
    for k in range(max(len(x) - 2, 0)):
        design = np.stack([np.ones_like(x), np.maximum(x - x[k], 0.0)], 1)
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        sse = float(np.sum((design @ coef - y) ** 2))
        if sse < best[0]:
            best = (sse, float(coef[1]), float(x[k]))
    values = np.array(best[1:])
    return xr.Dataset({"exponent": (("mode",), values, {"long_name": "scaling slope and knee", "units": "1"}),
                       "exponent_se": (("mode",), np.full(2, np.nan))},
                      coords={"mode": ["slope", "knee"]})


# ---- relevance flows (which units keep their couplings) --------------------------------------------------------

@register_signature("relevance_inputs", "l2", "which input features keep their outgoing weights, level by level "
                    "(the first layer's fan_out; a permutation of the inputs counts as a difference)")
def relevance_inputs(run: LoadedRun) -> xr.Dataset:
    """The fraction of each input feature's outgoing weights that survive, at every pruned level."""
    r = run_relevance(run.ds, lambda: relevance_flow(run.tensors("mask")))
    v = r["fan_out"].isel(layer=0, level=slice(1, None)).dropna("unit", how="all")
    names = [f"{lv}:{u}" for lv in v.level.values for u in v.unit.values]
    return _vector(v.values, names, "surviving fraction of an input feature's outgoing weights")


@register_signature("relevance_sorted", "l2", "the relevance of every unit up to a permutation of the units: each "
                    "layer's fan_in and fan_out per pruned level, sorted (the optimal matching of units in 1-D)")
def relevance_sorted(run: LoadedRun) -> xr.Dataset:
    """Per pruned level and layer, the sorted surviving fractions of the units' incoming and outgoing weights."""
    r = run_relevance(run.ds, lambda: relevance_flow(run.tensors("mask"))).isel(level=slice(1, None))
    parts, names = [], []
    for kind in KINDS:
        for layer in r.layer.values:
            v = r[kind].sel(layer=layer).dropna("unit", how="all").values
            parts.append(-np.sort(-v, axis=1).ravel())
            names += [f"{kind}:{layer}:{lv}:{k}" for lv in r.level.values for k in range(v.shape[1])]
    return _vector(np.concatenate(parts), names, "sorted surviving fractions of units' couplings")


@register_signature("relevance_dmd", "spectrum", "DMD spectrum of the relevance flow: the linearised map of every "
                    "unit's surviving fractions from level to level (which directions grow); no permutation of "
                    "units or inputs changes it")
def relevance_dmd(run: LoadedRun, delays: int = 0, rank: int | None = None, method: str = "exact") -> xr.Dataset:
    """DMD of the surviving fractions ``fan_out`` and ``fan_in`` of every unit of every layer, level by level."""
    r = run_relevance(run.ds, lambda: relevance_flow(run.tensors("mask")))
    parts = [r[kind].sel(layer=layer).dropna("unit", how="all").values for kind in KINDS for layer in r.layer.values]
    traj = xr.DataArray(np.concatenate(parts, axis=1), dims=("level", "component"), name="relevance",
                        attrs={"long_name": "surviving fraction of a unit's couplings", "units": "1"})
    return spectrum(traj, rank, delays, method)
