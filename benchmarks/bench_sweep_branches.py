"""A sweep's transfers into one target: one stacked call for the whole group (what ``rgnet sweep --stack N`` now
does) against one call per transfer unit (what it did before: each unit stacked only its own levels).

    python benchmarks/bench_sweep_branches.py [--sources 4] [--levels 2,4,6,8] [--steps 300] [--threads 1]

Records ``--sources + 1`` short MNIST-1D trunks (not timed), then trains the transfers of every source into the
first at ``--levels`` both ways, each into a fresh copy of the target, in this process on the same threads; prints
both wall times and their ratio, and checks that both ways wrote the same accuracies (bit for bit).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sources", type=int, default=4)
    ap.add_argument("--levels", default="2,4,6,8")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()

    import h5py
    import torch

    import rgnet
    from rgnet.imp.names import parse_levels
    from rgnet.sweep.plan import Unit
    from rgnet.sweep.run import run_group

    torch.set_num_threads(a.threads)
    levels = parse_levels(a.levels)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        cfgs = [rgnet.RunConfig(task=rgnet.TaskConfig("mnist1d", {"swaps": 3 * i}),
                                train=rgnet.TrainConfig(steps=a.steps), prune=rgnet.PruneConfig(levels=max(levels)),
                                seed=0) for i in range(a.sources + 1)]
        files = rgnet.record_many(cfgs, [d / f"t{i}.h5" for i in range(len(cfgs))], progress=False)
        target, sources = Path(files[0]), [Path(f) for f in files[1:]]
        walls, accs = {}, {}
        for way in ("per unit", "stacked"):
            folder = d / way.replace(" ", "_")
            folder.mkdir()
            copy = folder / target.name
            shutil.copy(target, copy)
            shutil.copytree(str(target) + ".tensors", str(copy) + ".tensors")
            units = tuple(Unit("transfer", f"transfer {s.stem} -> {target.stem}", str(copy), cfgs[0].to_json(),
                               source=str(s), source_id=rgnet.open_run(s).attrs["run_id"], levels=tuple(levels),
                               tensors=False) for s in sources)
            t0 = time.perf_counter()
            if way == "per unit":
                for u in units:
                    run_group((u,), 60.0)
            else:
                run_group(units, 60.0)
            walls[way] = time.perf_counter() - t0
            with h5py.File(copy, "r") as f:
                accs[way] = np.array([f[f"branches/{g}/test_acc"][levels] for g in sorted(f["branches"])])
        same = np.array_equal(accs["per unit"], accs["stacked"])
        print(f"{a.sources} transfers x {len(levels)} levels x {a.steps} steps, {a.threads} thread(s):")
        print(f"  one call per unit   {walls['per unit']:7.1f} s")
        print(f"  one stacked call    {walls['stacked']:7.1f} s")
        print(f"  speed-up            {walls['per unit'] / walls['stacked']:7.2f}x   (same accuracies: {same})")
        if not same:
            raise SystemExit("the stacked group wrote different accuracies")


if __name__ == "__main__":
    main()
