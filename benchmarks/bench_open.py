"""Opening speed: one run's per-level data, ``rgnet.open_runs`` over many files, and ``rgnet info``.

Records one MNIST-1D MLP run (13 levels, few steps: the file has the layout of a real run), copies its summary
file N times, and times in this process: ``rgnet.open_run`` (best of 5), ``xr.open_dataset`` of the same file
(reference), ``rgnet.open_runs`` over the N copies, and the ``rgnet info`` command in a fresh process.

    python benchmarks/bench_open.py [--files 100]     (targets on 2 cores: open_run < 0.1 s,
                                                       open_runs of 1,000 files < 60 s, rgnet info < 1 s)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import xarray as xr

import rgnet


def best(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--source", help="an existing run file to copy instead of recording one")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if a.source:
            src = Path(a.source)
        else:
            cfg = rgnet.RunConfig(train=rgnet.TrainConfig(steps=50, eval_every=10), prune=rgnet.PruneConfig(levels=12))
            src = rgnet.record(cfg, tmp / "run.h5", progress=False)
        t_run = best(lambda: rgnet.open_run(src))
        t_xr = best(lambda: xr.open_dataset(src, engine="h5netcdf").load())
        schema = rgnet.open_run(src).attrs["rgnet_schema"]
        print(f"one run ({src.stat().st_size / 1e3:.0f} kB summary file, schema {schema})")
        print(f"  rgnet.open_run               {t_run:7.3f} s   (target < 0.1 s)")
        print(f"  xr.open_dataset + load      {t_xr:7.3f} s   (reference; ratio {t_xr / t_run:.1f}x)")
        many = tmp / "many"
        many.mkdir()
        for k in range(a.files):
            shutil.copyfile(src, many / f"run{k:04d}.h5")
        t = time.perf_counter()
        ds = rgnet.open_runs(many)
        t_many = time.perf_counter() - t
        print(f"rgnet.open_runs over {a.files} files: {t_many:.2f} s ({1000 * t_many / a.files:.0f} ms a file; "
              f"1,000 files extrapolate to {t_many / a.files * 1000:.0f} s, target < 60 s); dims {dict(ds.sizes)}")
        cmd = [sys.executable, "-m", "rgnet.cli", "info", str(src)]
        t_info = best(lambda: subprocess.run(cmd, check=True, capture_output=True), repeat=3)
        t_py = best(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), repeat=3)
        print(f"rgnet info (fresh process)   {t_info:7.3f} s   (target < 1 s; a bare python start takes {t_py:.3f} s)")


if __name__ == "__main__":
    main()
