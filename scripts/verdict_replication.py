"""Do transfer verdicts replicate? Each verdict rule on two disjoint halves of the seeds of a transfer family.

    python scripts/verdict_replication.py data/transfer-family --halves 0,1,2 3,4

For every registered rule: the pairs (off the diagonal, unaligned sources) decided in both halves, how many of those
contradict (transfers in one half, does not in the other), and Cohen's kappa between the halves over the pairs
decided in both. For the continuous gap (``gap_range``: transferred minus own ticket, same seed and level, averaged
over the pruned levels): the split-half correlation across pairs (Pearson and Spearman) and the Spearman-Brown
reliability of the full-seed mean.
"""

from __future__ import annotations

import argparse
import json

import h5py

from rgnet.catalog import expand
from rgnet.verdicts import RULES, transfer_matrix
from rgnet.verdicts.replication import replication


def seed_of(path: str) -> int:
    with h5py.File(path, "r") as f:
        return int(json.loads(f.attrs["config"])["seed"])


def halves(files: list[str], a: list[int], b: list[int]) -> tuple[list[str], list[str]]:
    return [f for f in files if seed_of(f) in a], [f for f in files if seed_of(f) in b]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("family", help="folder, glob or sweep index of a transfer family")
    p.add_argument("--halves", nargs=2, default=["0,1,2", "3,4"], help="two disjoint seed lists (default 0,1,2 3,4)")
    a = p.parse_args(argv)
    sa, sb = ([int(x) for x in h.split(",")] for h in a.halves)
    files = expand(a.family)
    fa, fb = halves(files, sa, sb)
    print(f"{a.family}: seeds {sa} ({len(fa)} files) vs {sb} ({len(fb)} files)")
    print(f"{'rule':<16}{'pairs':>6}{'decided A':>10}{'decided B':>10}{'in both':>8}{'contradict':>11}{'kappa':>7}"
          f"{'gap r':>7}{'gap rho':>8}{'S-B rel.':>9}")
    for name in RULES:
        c = replication(transfer_matrix(fa, rule=name), transfer_matrix(fb, rule=name))
        print(f"{name:<16}{c['pairs']:>6}{c['decided_a']:>10}{c['decided_b']:>10}{c['decided_both']:>8}"
              f"{c['contradictions']:>11}{c['kappa']:>7.2f}{c['gap_pearson']:>7.2f}{c['gap_spearman']:>8.2f}"
              f"{c['gap_spearman_brown']:>9.2f}")


if __name__ == "__main__":
    main()
