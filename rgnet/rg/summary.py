"""Per-run flow summary for the ``rgnet flow`` command: a netCDF-ready Dataset and a plain-text table."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import xarray as xr

from rgnet.catalog import unique_runs
from rgnet.errors import ConfigError, StoreError
from rgnet.rg.couplings import couplings
from rgnet.rg.flow import fixed_point_level, wasserstein_flow
from rgnet.rg.linearise import linearise
from rgnet.rg.trajectory import scale_factor
from rgnet.store.cf import self_describing
from rgnet.store.reader import open_run

RunSource = xr.Dataset | str | os.PathLike


def _datasets(source: RunSource | Sequence[RunSource]) -> list[xr.Dataset]:
    """The input as in-memory Datasets, each with a ``run`` dim and a ``run_id(run)`` coordinate."""
    items = [source] if isinstance(source, (xr.Dataset, str, os.PathLike)) else list(source)
    if not items:
        raise ConfigError("flow_report needs at least one run Dataset or file path.")
    if not any(isinstance(i, xr.Dataset) for i in items):
        items = unique_runs([str(i) for i in items])
    out = []
    for item in items:
        ds = item if isinstance(item, xr.Dataset) else open_run(item)
        if ds.sizes.get("level", 0) == 0:
            where = f"{str(item)!r}" if not isinstance(item, xr.Dataset) else "a Dataset"
            raise StoreError(f"{where} has no complete level yet; finish recording it or leave it out")
        # learning curves are not part of the flow, and runs may have evaluated on different grids
        ds = ds.drop_dims("eval", errors="ignore")
        if "run" not in ds.dims:
            ds = ds.expand_dims(run=1)
        if "run_id" not in ds.coords or "run" not in ds["run_id"].dims:  # schema 2: a scalar coordinate
            ds = ds.assign_coords(run_id=("run", [str(ds.attrs.get("run_id", ""))] * ds.sizes["run"]))
        out.append(ds.compute())
    return out


def _spectrum(ds: xr.Dataset, b: float, kind: str, n_boot: int, tol: float, ci: float) -> xr.Dataset:
    """Spectrum of one run's linearised map, with real dtypes only (empty if the run is too short)."""
    try:
        lin = linearise(couplings(ds, kind), b=b, n_boot=n_boot, tol=tol, ci=ci)
    except (ConfigError, np.linalg.LinAlgError):
        return xr.Dataset()
    lam = lin["eigenvalues"]
    return xr.Dataset(
        {
            "eigenvalue_real": np.real(lam).assign_attrs(long_name="real part of the linearised-map eigenvalue"),
            "eigenvalue_imag": np.imag(lam).assign_attrs(long_name="imaginary part of the linearised-map eigenvalue"),
            "eigenvalue_abs": abs(lam).assign_attrs(long_name="|lambda|", units="1"),
            "eigenvalue_abs_ci": lin["abs_eigenvalues_ci"],
            "exponent": lin["exponents"],
            "exponent_ci": lin["exponents_ci"],
            "kind": lin["kind"],
            "fixed_point": lin["fixed_point"],
        }
    )


def _summarise(ds: xr.Dataset, b: float | None, kind: str, n_boot: int, tol: float, fixed_tol: float, ci: float):
    """Report rows for the runs of one Dataset (dims ``run, level, ...``)."""
    runs = [ds.isel(run=i) for i in range(ds.sizes["run"])]
    b_runs = [scale_factor(run) if b is None else float(b) for run in runs]
    flow = wasserstein_flow(ds)
    level = fixed_point_level(flow["w1_shape"], tol=fixed_tol)
    level.attrs.pop("tol")
    out = xr.Dataset(
        {
            "scale_factor": (("run",), b_runs, {"long_name": "RG scale factor per level b", "units": "1"}),
            "fixed_point_level": level,
            **{k: flow[k] for k in ("w1", "w1_shape", "d_log_scale")},
        },
    )
    spectra = [_spectrum(run, b_run, kind, n_boot, tol, ci) for run, b_run in zip(runs, b_runs)]
    spectrum = xr.concat(spectra, dim="run", join="outer", coords="minimal", compat="override", fill_value={"kind": ""})
    out = out.merge(spectrum.drop_vars([c for c in spectrum.coords if "run" in spectrum[c].dims]))
    return out.assign_coords(run_id=("run", ds["run_id"].values.astype(str)))


def flow_report(
    ds_or_runs: RunSource | Sequence[RunSource],
    b: float | None = None,
    kind: str = "scale",
    n_boot: int = 200,
    tol: float = 0.05,
    fixed_tol: float = 0.02,
    ci: float = 0.95,
) -> xr.Dataset:
    """Flow summary per run: fixed-point level, spectrum of the linearised map, W1 flow per layer.

    Parameters
    ----------
    ds_or_runs : Dataset, path, or sequence of them
        Run Datasets (with or without a ``run`` dim) or run files.
    b : float, optional
        Scale factor per level; default per run from its density ladder.
    kind : str
        Couplings used for the linearisation (see :func:`rgnet.rg.couplings`); each run is fitted alone,
        with the bootstrap over its snapshot pairs.
    n_boot : int
        Bootstrap replicates for the confidence intervals.
    tol : float
        Modes whose interval of ``|lambda|`` lies within ``1 ± tol`` are marginal (see
        :func:`rgnet.rg.linearise.classify`).
    fixed_tol : float
        A fixed point is reached from the level where every later ``w1_shape`` step (max over layers) is
        below this (dimensionless, in units of the std).
    ci : float
        Confidence level of the intervals.

    Returns
    -------
    xr.Dataset
        Dims ``run, level, layer, mode, bound, coupling``: ``run_id(run)``, ``scale_factor(run)``,
        ``fixed_point_level(run)`` (-1: none), ``w1, w1_shape, d_log_scale (run, level, layer)``,
        ``eigenvalue_real, eigenvalue_imag, eigenvalue_abs, exponent, kind (run, mode)``,
        ``eigenvalue_abs_ci, exponent_ci (run, mode, bound)``, ``fixed_point (run, coupling)``; with several
        runs also ``pooled_*`` (one map fitted to all runs' snapshot pairs, bootstrap over runs). Real dtypes
        and plain attributes only, so ``to_netcdf(engine="h5netcdf")`` works.
    """
    datasets = _datasets(ds_or_runs)
    parts = [_summarise(ds, b, kind, n_boot, tol, fixed_tol, ci) for ds in datasets]
    report = xr.concat(parts, dim="run", join="outer", coords="minimal", compat="override", fill_value={"kind": ""})
    report = report.drop_vars([c for c in ("density", "run") if c in report.coords])
    if report.sizes["run"] > 1:
        # one map fitted to the snapshot pairs of all runs, bootstrap over runs
        pooled = xr.concat(datasets, dim="run", join="outer", coords="minimal", compat="override")
        b_all = float(report["scale_factor"].mean()) if b is None else float(b)
        spec = _spectrum(pooled, b_all, kind, n_boot, tol, ci)
        report = report.merge(spec.rename({k: f"pooled_{k}" for k in spec.data_vars}))
    report.attrs = {
        "Conventions": "CF-1.8",
        "title": "rgnet flow report",
        "coupling_kind": kind,
        "n_boot": int(n_boot),
        "tol": float(tol),
        "fixed_tol": float(fixed_tol),
        "ci": float(ci),
    }
    return self_describing(report, "rgnet flow report: fixed points, linearised-map spectra and W1 flow per run")


def _fmt_ci(ci: np.ndarray) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if np.all(np.isfinite(ci)) else "[   n/a   ]"


def format_flow_report(report: xr.Dataset) -> str:
    """Plain-text table of a :func:`flow_report` Dataset: one row per run and mode, then W1 per layer."""
    pct = f"{report.attrs.get('ci', 0.95):.0%}"
    ci = f"{pct} CI"
    head = f"{'run':<20} {'b':>6} {'fixed@':>6} {'mode':>4} {'|lambda|':>9} {ci:>18} {'y':>8} {ci:>18}  kind"
    lines = [head, "-" * len(head)]
    has_spectrum = "eigenvalue_abs" in report
    for i in range(report.sizes["run"]):
        r = report.isel(run=i)
        fixed = int(r["fixed_point_level"])
        fixed_at = fixed if fixed >= 0 else "none"
        left = f"{str(r['run_id'].values)[:20]:<20} {float(r['scale_factor']):>6.3f} {fixed_at:>6}"
        abs_lam = r["eigenvalue_abs"].values if has_spectrum else np.array([])
        modes = np.flatnonzero(np.isfinite(abs_lam))
        if not modes.size:
            lines.append(f"{left}  (no spectrum: too few levels)")
        for k, m in enumerate(modes):
            rm = r.isel(mode=m)
            lines.append(
                f"{left if k == 0 else ' ' * len(left)} {m:>4} {abs_lam[m]:>9.4f} "
                f"{_fmt_ci(rm['eigenvalue_abs_ci'].values):>18} {float(rm['exponent']):>8.4f} "
                f"{_fmt_ci(rm['exponent_ci'].values):>18}  {str(rm['kind'].values)}"
            )
    if "pooled_eigenvalue_abs" in report:
        left = f"{'pooled (%d runs)' % report.sizes['run']:<20} {float(report['scale_factor'].mean()):>6.3f} {'':>6}"
        for k in range(report.sizes["mode"]):
            p = report.isel(mode=k)
            if not np.isfinite(p["pooled_eigenvalue_abs"]):
                continue
            lines.append(
                f"{left if k == 0 else ' ' * len(left)} {k:>4} {float(p['pooled_eigenvalue_abs']):>9.4f} "
                f"{_fmt_ci(p['pooled_eigenvalue_abs_ci'].values):>18} {float(p['pooled_exponent']):>8.4f} "
                f"{_fmt_ci(p['pooled_exponent_ci'].values):>18}  {str(p['pooled_kind'].values)}"
            )
    layers = [str(x) for x in report["layer"].values]
    lines += ["", "W1 of w/std to the next level (last recorded step), per layer"]
    lines.append(f"{'run':<20} " + " ".join(f"{x:>10}" for x in layers))
    for i in range(report.sizes["run"]):
        w = report["w1_shape"].isel(run=i).dropna("level", how="all")
        last = w.isel(level=-1).values if w.sizes["level"] else np.full(len(layers), np.nan)
        lines.append(f"{str(report['run_id'].values[i])[:20]:<20} " + " ".join(f"{v:>10.4f}" for v in last))
    tol, fixed_tol = report.attrs.get("tol"), report.attrs.get("fixed_tol")
    lines += ["", f"b: scale factor per level (1 / kept fraction); fixed@: first level from which every later W1 step "
                  f"of w/std stays below {fixed_tol:g} (none: not reached); mode: eigenvalue of the linearised map "
                  f"(a complex pair shares |lambda|); y = ln|lambda| / ln b; kind from the {pct} interval of "
                  f"|lambda|: relevant above 1, irrelevant below 1, marginal inside 1 ± {tol:g}, undecided when it "
                  "contains 1 otherwise"]
    return "\n".join(lines)
