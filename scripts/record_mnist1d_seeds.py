"""Record the default IMP job (MNIST-1D, MLP 40-100-100-10, 12 levels at p = 0.2) for several seeds, with
its lottery-ticket baselines (random re-initialisation, random masks per layer and global, the other rewind
point) as branches.

    python scripts/record_mnist1d_seeds.py [--seeds 0 1 2 3 4] [--out data/mnist1d-mlp] [--jobs 2] [--no-baselines]

Resumable like `rgnet record`: re-running skips complete levels. Trunks keep their trained weights; branches
keep masks and summaries. Prints the ladders under both metrics (early stop and end of training).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def seed_job(args) -> str:
    import rgnet

    seed, out, device, baselines = args
    path = rgnet.record(rgnet.RunConfig(seed=seed), Path(out) / f"seed{seed}.h5", device=device, progress=False)
    if baselines:
        rgnet.run_baselines(path, tensors=False, device=device, progress=False)
    return str(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--out", default="data/mnist1d-mlp")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--jobs", type=int, default=2, help="parallel worker processes (one seed each)")
    ap.add_argument("--no-baselines", action="store_true")
    a = ap.parse_args()
    Path(a.out).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.jobs, mp_context=mp.get_context("spawn")) as pool:
        paths = list(pool.map(seed_job, [(s, a.out, a.device, not a.no_baselines) for s in a.seeds]))
    print(f"recorded {len(paths)} seeds in {time.perf_counter() - t0:.0f} s")

    import rgnet
    from rgnet.info import level_table
    from rgnet.verdicts import format_tickets

    for path in paths:
        print(level_table(path))
    for metric in ("test_acc", "test_acc_final"):
        print("\n" + format_tickets(rgnet.winning_tickets(paths, metric)))


if __name__ == "__main__":
    main()
