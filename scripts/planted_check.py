"""Score the predictors on a planted family and on a null family (``scripts/planted_family.toml``,
``scripts/null_family.toml``), where which tickets should transfer is known by construction.

    rgnet sweep scripts/planted_family.toml --dir runs/planted
    rgnet sweep scripts/null_family.toml --dir runs/null
    python scripts/planted_check.py runs/planted runs/null

Per family: the measured paired gap of every pair with its verdict, the gap by planted relation (same inputs,
inputs permuted, disjoint inputs, subset / superset), and the universality scores (the primary tau_w first). A
scoring that works finds the planted order (same inputs > permuted or disjoint) on the planted family and nothing on
the null family; pairs related by a permutation only are reported apart from the others.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rgnet.catalog import read_index
from rgnet.tasks import TASKS
from rgnet.universality import format_universality, universality
from rgnet.verdicts import format_transfer_matrix, transfer_matrix


def relation(a: dict, b: dict) -> str:
    """How the inputs teacher task ``b`` reads relate to those of ``a`` (parameters with defaults filled)."""
    def support(p):
        n = p["support"] or p["input_dim"]
        return set(range(p["support_offset"], p["support_offset"] + n))

    sa, sb = support(a), support(b)
    if sa == sb:
        same_rest = {k: v for k, v in a.items() if k != "input_order_seed"} == \
            {k: v for k, v in b.items() if k != "input_order_seed"}
        if a["input_order_seed"] != b["input_order_seed"]:
            return "permuted (same task)" if same_rest else "permuted, other teacher"
        return "same inputs"
    if not sa & sb:
        return "disjoint inputs"
    return "subset" if sa < sb else "superset" if sa > sb else "overlapping"


def family_report(folder: Path, seed: int) -> str:
    index = folder / "index.nc"
    cols = read_index(index)
    key = dict(zip(cols["label"], cols["task"]))   # the spec's task name -> its task label (the parameters)
    m = transfer_matrix(index)
    lines = [f"== {folder}", format_transfer_matrix(m), ""]
    cfg = {t: {**TASKS["teacher"].defaults, **_params(key.get(t, t))} for t in m.target.values}
    by: dict[str, list[float]] = {}
    for s in m.source.values:
        for t in m.target.values:
            if s == t or s not in cfg:
                continue
            g = float(m.gap_range.sel(source=s, target=t))
            if np.isfinite(g):
                by.setdefault(relation(cfg[s], cfg[t]), []).append(g)
    lines.append("paired gap by planted relation of the target's inputs to the source's (points, mean over pairs):")
    for rel, gaps in sorted(by.items(), key=lambda kv: -np.mean(kv[1])):
        lines.append(f"  {rel:<26} {100 * np.mean(gaps):+6.2f}  ({len(gaps)} pairs)")
    ds = universality(index, seed=seed)
    lines += ["", format_universality(ds)]
    return "\n".join(lines)


def _params(label: str) -> dict:
    """Teacher parameters from a task label such as ``teacher(seed=1,support=20)``."""
    if "(" not in label:
        return {}
    out = {}
    for part in label[label.index("(") + 1:-1].split(","):
        k, v = part.split("=", 1)
        out[k] = json.loads(v)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("planted", type=Path, help="folder of the planted family's sweep (holds index.nc)")
    p.add_argument("null", type=Path, nargs="?", help="folder of the null family's sweep")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    for folder in [a.planted, *([a.null] if a.null else [])]:
        print(family_report(folder, a.seed))
        print()


if __name__ == "__main__":
    main()
