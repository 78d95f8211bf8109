"""Record the default IMP job (MNIST-1D, MLP 40-100-100-10, 12 levels at p = 0.2) for several seeds, with
its lottery-ticket baselines (random re-initialisation, random masks, the other rewind point) as branches.

    python scripts/record_mnist1d_seeds.py [--seeds 0 1 2 3 4] [--out data/mnist1d-mlp] [--no-baselines]

Resumable like `rgnet record`: re-running skips complete levels. On 2 CPU cores about 40 s per seed for IMP
and 3 minutes per seed for the four baselines (branches keep masks and summaries, not trained weights).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import rgnet
from rgnet.report import level_table
from rgnet.verdicts import format_tickets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--out", default="data/mnist1d-mlp")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-baselines", action="store_true")
    a = ap.parse_args()
    paths = []
    for seed in a.seeds:
        path = rgnet.record(rgnet.RunConfig(seed=seed), Path(a.out) / f"seed{seed}.h5", device=a.device)
        print(level_table(path))
        if not a.no_baselines:
            rgnet.run_baselines(path, tensors=False, device=a.device)
        paths.append(path)
    for metric in ("test_acc", "test_acc_final"):
        print("\n" + format_tickets(rgnet.winning_tickets(paths, metric)))


if __name__ == "__main__":
    main()
