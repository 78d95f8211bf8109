"""Recording overhead: the share of ``rgnet.record`` wall time not spent training, for conv2 with tensors.

conv2 (4.3M parameters) on synthetic 32x32x3 images (random CIFAR-10-format batches written to a temporary
folder), every level's trained weights stored, 15 levels (14 pruning steps at p = 0.2). Steps are scaled down
so that it runs in a few minutes; the overhead per level (theory, pruning, commit) does not depend on them.
Also prints the per-level commit time of the first and the last levels: the commit cost must not grow with
the levels already written.

    python benchmarks/bench_record_overhead.py [--steps 60] [--levels 14] [--images 2000]   (target <= 5 %)
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np

import rgnet


def synthetic_cifar10(root: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        m = n // 5 if name != "test_batch" else n // 5
        batch = {b"data": rng.integers(0, 256, (m, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, m).tolist()}
        (d / name).write_bytes(pickle.dumps(batch, protocol=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--levels", type=int, default=14)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    import rgnet.imp.driver as driver

    commits: list[float] = []
    real = driver.commit_level

    def timed_commit(*args, **kw):
        t = time.perf_counter()
        real(*args, **kw)
        commits.append(time.perf_counter() - t)

    driver.commit_level = timed_commit
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synthetic_cifar10(root / "data", a.images)
        cfg = rgnet.RunConfig(
            task=rgnet.TaskConfig("cifar10", {"val_size": a.images // 10}),
            model=rgnet.ModelConfig("conv2"),
            train=rgnet.TrainConfig(optimizer="adam", lr=2e-4, batch_size=60, steps=a.steps, eval_every=a.steps),
            prune=rgnet.PruneConfig(levels=a.levels, fraction=0.2, output_fraction=0.1),
            store=rgnet.StoreConfig(tensors=True))
        t = time.perf_counter()
        path = rgnet.record(cfg, root / "conv2.h5", data_root=root / "data", progress=False, threads=a.threads)
        wall = time.perf_counter() - t
        ds = rgnet.open_run(path)
        trained = float(ds.train_seconds.sum())
        size = sum(f.stat().st_size for f in [path, *path.with_name(path.name + ".tensors").rglob("*")]
                   if f.is_file())
    n = ds.sizes["level"]
    print(f"conv2, {n} levels of {a.steps} steps (batch 60), tensors stored; {size / 1e6:.0f} MB written")
    print(f"wall {wall:.1f} s, training {trained:.1f} s (sum of train_seconds)")
    print(f"commit per level: first 3 {np.round(commits[:3], 3).tolist()} s, last 3 "
          f"{np.round(commits[-3:], 3).tolist()} s")
    print(f"recording overhead: {100 * (wall - trained) / wall:.1f} % of rgnet.record wall time "
          f"({(wall - trained) / n:.2f} s per level, file creation and data loading included; target <= 5 %)")


if __name__ == "__main__":
    main()
