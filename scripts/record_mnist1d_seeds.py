"""Record the default IMP job (MNIST-1D, MLP 40-100-100-10, 12 levels at p = 0.2) for several seeds.

    python scripts/record_mnist1d_seeds.py [--seeds 0 1 2 3 4] [--out data/mnist1d-mlp]

Resumable like `rgnet record`: re-running skips complete levels. About 40 s per seed on 2 CPU cores.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import rgnet
from rgnet.report import level_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--out", default="data/mnist1d-mlp")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    for seed in a.seeds:
        path = rgnet.record(rgnet.RunConfig(seed=seed), Path(a.out) / f"seed{seed}.h5", device=a.device)
        print(level_table(path))


if __name__ == "__main__":
    main()
