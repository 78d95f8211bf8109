"""Benchmark: RG analysis of 100 synthetic run files opened lazily (target < 30 s on 2 cores).

Run: ``python benchmarks/bench_rg_open_runs.py [--runs 100] [--levels 13]``. Prints wall times; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import xarray as xr

import rgnet.rg as rg
from rgnet.rg._synthetic import synthetic_run


def _open_mf(paths: list[Path]) -> xr.Dataset:
    return xr.open_mfdataset(paths, engine="h5netcdf", combine="nested", concat_dim="run", join="outer")


def _open(paths: list[Path]) -> xr.Dataset:
    try:
        from rgnet import open_runs
    except ImportError:
        return _open_mf(paths)
    return open_runs(paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--levels", type=int, default=13)
    parser.add_argument("--n-boot", type=int, default=200)
    args = parser.parse_args()
    times: dict[str, float] = {}

    def timed(name: str, fn):
        start = time.perf_counter()
        result = fn()
        times[name] = time.perf_counter() - start
        print(f"{name:<34} {times[name]:7.2f} s", flush=True)
        return result

    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"run{k:03d}.h5" for k in range(args.runs)]

        def write() -> None:
            for k, p in enumerate(paths):
                run = synthetic_run(levels=args.levels, n_bins=64, seed=k, run_id=f"run{k:03d}")
                run.to_netcdf(p, engine="h5netcdf")

        timed(f"write {args.runs} files (not counted)", write)
        timed("xr.open_mfdataset (reference only)", lambda: _open_mf(paths))
        start = time.perf_counter()
        ds = timed("open lazily (rgnet.open_runs)", lambda: _open(paths))
        traj = timed("couplings(scale+shape)", lambda: rg.couplings(ds, ["scale", "shape"]).compute())
        flow = timed("wasserstein_flow", lambda: rg.wasserstein_flow(ds).compute())
        timed("fixed_point_level", lambda: rg.fixed_point_level(flow, tol=0.05))
        scale = traj.sel(coupling=traj["coupling"].str.startswith("log_std"))
        lin = timed(f"linearise(scale, n_boot={args.n_boot})", lambda: rg.linearise(scale, n_boot=args.n_boot))
        out = timed("dmd(scale+shape, tls)", lambda: rg.dmd(traj, method="tls"))
        total = time.perf_counter() - start
        print(f"{'total analysis':<34} {total:7.2f} s   (target < 30 s on 2 cores)")
        print(f"leading |lambda| linearise: {abs(complex(lin['eigenvalues'][0])):.4f}, dmd rank {out.attrs['rank']}: "
              f"{abs(complex(out['eigenvalues'][0])):.4f}")
        report = timed(f"flow_report (per run, n_boot={args.n_boot})", lambda: rg.flow_report(ds, n_boot=args.n_boot))
        print(f"report: {report.sizes['run']} runs, {report.sizes['level']} levels")


if __name__ == "__main__":
    main()
