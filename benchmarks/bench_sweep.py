"""A sweep on a LocalCluster against the same sweep in one process: wall times, their ratio, identical files.

    python benchmarks/bench_sweep.py [--spec scripts/transfer_family.toml] [--tasks default shuffled teacher]
                                     [--seeds 0 1] [--steps 200] [--workers 2] [--dir DIR]

The spec is scaled down by the flags (a subset of its tasks, other seeds, fewer steps per level), run once with
``--sequential`` and once on a LocalCluster of ``--workers`` single-threaded processes, each into a fresh folder;
the script prints both wall times, the speed-up, the load average before each run (other jobs on the machine
distort the ratio), and checks that the two folders hold the same runs bit for bit.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def scaled_spec(path: Path, tasks: list[str] | None, seeds: list[int] | None, steps: int | None):
    from rgnet.sweep.spec import parse_spec

    text = path.read_text()
    d = tomllib.loads(text)
    if tasks:
        d["tasks"] = {k: v for k, v in d["tasks"].items() if k in tasks}
    if seeds:
        d.setdefault("sweep", {})["seeds"] = seeds
    if steps:
        d.setdefault("train", {})["steps"] = steps
    return parse_spec(d, text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", default=str(Path(__file__).resolve().parents[1] / "scripts" / "transfer_family.toml"))
    ap.add_argument("--tasks", nargs="+", default=["default", "shuffled", "teacher"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", help="folder for the two sweeps (default: a new temporary folder)")
    a = ap.parse_args()

    from rgnet.sweep import sweep
    from rgnet.sweep.compare import sweeps_differ

    spec = scaled_spec(Path(a.spec), a.tasks, a.seeds, a.steps)
    root = Path(a.dir or tempfile.mkdtemp(prefix="bench_sweep_"))
    runs = {}
    for name, kw in (("cluster", {"workers": a.workers}), ("sequential", {"sequential": True})):
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        r = sweep(spec, root / name, progress_bar=False, dashboard=None, **kw)
        runs[name] = time.perf_counter() - t0
        print(f"{name:>10}: {runs[name]:7.1f} s wall, {len(r.results)} units, {len(r.failed)} failed "
              f"(load average before: {load:.1f} on {os.cpu_count()} cores)", flush=True)
    print(f"speed-up of {a.workers} workers over one process: {runs['sequential'] / runs['cluster']:.2f}x")
    diff = sweeps_differ(root / "sequential", root / "cluster")
    print("run files identical bit for bit" if not diff else f"{len(diff)} differences, e.g. {diff[:3]}")


if __name__ == "__main__":
    main()
