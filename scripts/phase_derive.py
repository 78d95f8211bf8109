"""The derived dataset of the phase family: what the paper and the notebook read, from the raw run files.

    rgnet sweep scripts/phase_family.toml --dir runs/phase --stack 12     # the raw runs (not in git)
    python scripts/phase_derive.py runs/phase                            # -> data/phase/ (in git)

Writes into ``--out`` (default data/phase):

- ``runs.nc``: per run (task, seed, the grid coordinates ``swaps`` and ``noise``) and IMP level: density,
  accuracies, losses, and the relevance flows (``fan_in``, ``fan_out``, their |w| masses) per layer and unit;
- ``transfer.nc``: the transfer matrix of every seed (``rgnet.transfer_matrix``: per pair x seed x level the paired
  gap ``gap_seed``, per pair the verdict), and the same per seed half (``half`` = signature seeds, gap seeds):
  ``gap_range_half``, ``gap_range_ci_half``, ``verdict_half``;
- ``universality.nc``: the pre-registered analysis (paper/preregistration.md, Amendment 1): every signature and
  baseline from the signature seeds, scored against the transfer measured on the other seeds.

The analysis is the slow part (minutes); everything else is seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "scripts" / "phase_family.toml"
SIGNATURE_SEEDS = "0-5"   # the pre-registered split: signatures from these seeds, the measured transfer from the rest
#: per-run variables kept (per level, and the relevance flows per layer and unit)
RUN_VARS = ["test_acc", "val_acc", "train_loss", "test_loss", "w_absmean", "fan_in", "fan_out", "fan_in_mass",
            "fan_out_mass"]


def task_params(spec: Path) -> dict[str, dict]:
    from rgnet.sweep import load_spec
    from rgnet.tasks import resolve_params

    return {r.label: {k: resolve_params(r.config.task)[k] for k in ("swaps", "corr_noise_scale")}
            for r in load_spec(spec).runs}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", help="folder of the phase family's run files (rgnet sweep --dir)")
    ap.add_argument("--out", default=str(ROOT / "data" / "phase"))
    ap.add_argument("--spec", default=str(SPEC))
    ap.add_argument("--signature-seeds", default=SIGNATURE_SEEDS, help=f"default {SIGNATURE_SEEDS} (pre-registered)")
    a = ap.parse_args(argv)

    import rgnet
    from rgnet.catalog import expand
    from rgnet.imp.names import parse_levels
    from rgnet.store.outputs import write_new
    from rgnet.universality import universality
    from rgnet.verdicts.replication import replication

    files = sorted(expand(a.runs))
    if not files:
        print(f"phase_derive: no run files in {a.runs}; record them first (see the docstring)", file=sys.stderr)
        return 2
    labels, params = rgnet.task_labels(a.spec), task_params(Path(a.spec))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    say = lambda line: print(f"[{time.perf_counter() - t0:5.0f} s] {line}", flush=True)  # noqa: E731
    comp = {"zlib": True, "complevel": 4}

    runs = rgnet.open_runs(files, labels=labels)
    keep = [v for v in RUN_VARS if v in runs]
    slim = runs[keep].reset_coords(drop=False)[keep + ["density"]].load()
    slim = slim.assign_coords(task=("run", runs.task.values), seed=("run", runs.seed.values.astype(int)),
                              run_id=("run", runs.run_id.values))
    slim = slim.assign_coords(swaps=("run", [params[t]["swaps"] for t in runs.task.values]),
                              noise=("run", [params[t]["corr_noise_scale"] for t in runs.task.values]))
    slim.attrs = {"title": "rgnet phase family: per-run summaries and relevance flows of the IMP trunks",
                  "Conventions": "CF-1.8", "spec": Path(a.spec).read_text()}
    write_new(out / "runs.nc", lambda tmp: slim.to_netcdf(
        tmp, engine="h5netcdf", encoding={v: comp for v in slim.data_vars}), command="phase_derive", overwrite=True)
    say(f"runs.nc: {slim.sizes['run']} runs")

    sig_seeds = parse_levels(a.signature_seeds, "--signature-seeds")
    gap_seeds = sorted(set(int(s) for s in runs.seed.values) - set(sig_seeds))
    seed_of = {str(Path(f).resolve()): int(s) for f, s in zip(runs.path.values, runs.seed.values)}
    matrix = rgnet.transfer_matrix(files, labels=labels)
    halves = [rgnet.transfer_matrix([f for f in files if seed_of[str(Path(f).resolve())] in seeds], labels=labels)
              for seeds in (sig_seeds, gap_seeds)]
    matrix["gap_range_half"] = xr.concat([h.gap_range for h in halves], "half")
    matrix["gap_range_ci_half"] = xr.concat([h.gap_range_ci for h in halves], "half")
    matrix["verdict_half"] = xr.concat([h.transfer_verdict for h in halves], "half")
    matrix = matrix.assign_coords(half=["signature seeds", "gap seeds"])
    for dim in ("source", "target"):
        matrix = matrix.assign_coords({f"{dim}_swaps": (dim, [params[t]["swaps"] for t in matrix[dim].values]),
                                       f"{dim}_noise": (dim, [params[t]["corr_noise_scale"]
                                                              for t in matrix[dim].values])})
    matrix.attrs["replication"] = json.dumps(replication(*halves))
    matrix.attrs["halves"] = json.dumps({"signature seeds": sig_seeds, "gap seeds": gap_seeds})
    write_new(out / "transfer.nc", lambda tmp: matrix.to_netcdf(
        tmp, engine="h5netcdf", encoding={v: comp for v in matrix.data_vars if matrix[v].dtype.kind in "fiu"}),
        command="phase_derive", overwrite=True)
    say(f"transfer.nc: {int(np.isfinite(matrix.gap_range).sum())} measured pairs; halves {matrix.attrs['replication']}")

    u = universality(files, labels=labels, signature_seeds=sig_seeds, log=say)
    u.attrs["title"] = "rgnet phase family: universality classes and transfer prediction (pre-registered analysis)"
    write_new(out / "universality.nc", lambda tmp: u.to_netcdf(
        tmp, engine="h5netcdf", encoding={v: comp for v in u.data_vars if u[v].dtype.kind in "fiu"}),
        command="phase_derive", overwrite=True)
    say(f"universality.nc: {u.sizes['predictor']} predictors")
    return 0


if __name__ == "__main__":
    from rgnet.errors import RgnetError

    try:
        sys.exit(main())
    except RgnetError as err:   # bad input: one sentence, exit 2 (as the CLI does)
        print(f"phase_derive: {err}", file=sys.stderr)
        sys.exit(2)
