"""Which early-stopping criterion selects a trained network? The evidence behind rgnet's default.

    python scripts/early_stopping_study.py [--seeds 0 1 2 3 4] [--out runs/early-stopping] [--jobs 2]

Records the default job (MNIST-1D, 6000 steps per level, Adam 1e-2) for the MLP (12 IMP levels) and the
MNIST-1D CNN (``--cnn-levels``), evaluating every ``--eval-every`` iterations, without tensors; then, from the
stored learning curves alone, applies every criterion at several evaluation intervals and compares the test
accuracy of the network it selects with the best test accuracy along training (an oracle no criterion may
use) and with the end of training. Resumable; re-running only re-analyses. Prints the tables and writes
``<out>/early_stopping.nc``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import xarray as xr

CRITERIA = ("val_acc", "val_loss")
INTERVALS = (50, 100, 250)


def config(model: str, seed: int, levels: int, eval_every: int):
    import rgnet

    return rgnet.RunConfig(model=rgnet.ModelConfig(model), train=rgnet.TrainConfig(eval_every=eval_every),
                           prune=rgnet.PruneConfig(levels=levels), store=rgnet.StoreConfig(tensors=False), seed=seed)


def record_job(args) -> str:
    import rgnet

    model, seed, levels, eval_every, out = args
    return str(rgnet.record(config(model, seed, levels, eval_every), Path(out) / f"{model}-s{seed}.h5",
                            progress=False))


def analyse(paths: list[str]) -> xr.Dataset:
    """Per (model, seed, level, criterion, interval): test accuracy at the pick, best and final test accuracy."""
    import rgnet
    from rgnet.engine.loop import stop_index

    rows = []
    for path in paths:
        ds = rgnet.open_run(path)
        cfg = rgnet.config_of(ds)
        its = ds.iteration.values
        for lv in range(ds.sizes["level"]):
            curves = {k: ds[f"curve_{k}"].isel(level=lv).values for k in ("val_loss", "val_acc", "test_acc")}
            test = curves["test_acc"]
            for every in INTERVALS:
                keep = (its % every == 0) | (its == its[-1])
                sub = {k: np.where(keep, v, np.nan) for k, v in curves.items()}
                for crit in CRITERIA:
                    j = stop_index(sub, crit)
                    rows.append((cfg["model"]["name"], cfg["seed"], lv, float(ds.density[lv]), crit, every,
                                 test[j], int(its[j]), np.nanmax(test), test[-1]))
    keys = ("model", "seed", "level", "density", "criterion", "interval", "picked", "stop_iteration", "best",
            "final")
    cols = dict(zip(keys, map(np.asarray, zip(*rows))))
    index = ["model", "seed", "level", "criterion", "interval"]
    df = {k: cols[k] for k in keys}
    import pandas as pd

    table = pd.DataFrame(df).set_index(index)
    out = xr.Dataset.from_dataframe(table)
    out["density"] = out.density.max(["seed", "criterion", "interval"])
    out["picked"].attrs.update(long_name="test accuracy at the criterion's early-stop iteration", units="1")
    out["best"].attrs.update(long_name="best test accuracy along training (oracle)", units="1")
    out["final"].attrs.update(long_name="test accuracy at the end of training", units="1")
    out["stop_iteration"].attrs.update(long_name="early-stop iteration", units="1")
    out["density"].attrs.update(long_name="fraction of prunable weights kept", units="1")
    for k, name in (("seed", "seed of the run"), ("level", "IMP level"),
                    ("interval", "evaluation interval (iterations)"), ("criterion", "early-stopping criterion")):
        out[k].attrs.update(long_name=name)
    from rgnet.store.cf import self_describing

    return self_describing(out, "rgnet early-stopping study")


def report(ds: xr.Dataset) -> str:
    lines = []
    for model in ds.model.values:
        m = ds.sel(model=model).dropna("level", how="all", subset=["picked"])
        n = int(m.seed.size)
        lines.append(f"\n{model}: test accuracy %, mean over {n} seeds (std); 'pick - best' is the loss against "
                     "the best test accuracy along training")
        best, final = m.best.isel(criterion=0, interval=0), m.final.isel(criterion=0, interval=0)
        lines.append(f"  dense: end of training {100 * float(final.sel(level=0).mean()):.1f} "
                     f"({100 * float(final.sel(level=0).std(ddof=1)):.1f}), best along training "
                     f"{100 * float(best.sel(level=0).mean()):.1f}")
        head = "  criterion  every  " + "  ".join(f"{'L' + str(int(lv)):>14}" for lv in m.level.values)
        lines.append(head)
        for crit in m.criterion.values:
            for every in m.interval.values:
                c = m.sel(criterion=crit, interval=every)
                gap = 100 * (c.picked - c.best)
                cells = [f"{100 * float(c.picked.sel(level=lv).mean()):5.1f} ({float(gap.sel(level=lv).mean()):+5.1f})"
                         for lv in m.level.values]
                lines.append(f"  {crit:<9}  {int(every):>5}  " + "  ".join(f"{x:>14}" for x in cells))
        ends = [f"{100 * float(final.sel(level=lv).mean()):5.1f} "
                f"({100 * float((final - best).sel(level=lv).mean()):+5.1f})" for lv in m.level.values]
        lines.append(f"  {'end':<9}  {'':>5}  " + "  ".join(f"{x:>14}" for x in ends))
        lines.append("  density %         " + "  ".join(f"{100 * float(m.density.sel(level=lv)):>14.1f}"
                                                        for lv in m.level.values))
        its = m.stop_iteration.sel(interval=min(INTERVALS))
        lines.append("  mean stop iteration (every 50): " + "; ".join(
            f"{c} " + " ".join(f"{float(its.sel(criterion=c, level=lv).mean()):.0f}" for lv in m.level.values)
            for c in m.criterion.values))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--out", default="runs/early-stopping")
    ap.add_argument("--levels", type=int, default=12, help="IMP levels of the MLP runs")
    ap.add_argument("--cnn-levels", type=int, default=3, help="IMP levels of the CNN runs")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    Path(a.out).mkdir(parents=True, exist_ok=True)
    jobs = [(m, s, lv, a.eval_every, a.out) for m, lv in (("mlp", a.levels), ("cnn1d", a.cnn_levels))
            for s in a.seeds]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.jobs, mp_context=mp.get_context("spawn")) as pool:
        paths = list(pool.map(record_job, jobs))
    print(f"recorded {len(paths)} runs in {time.perf_counter() - t0:.0f} s")
    ds = analyse(paths)
    print(report(ds))
    ds.to_netcdf(Path(a.out) / "early_stopping.nc", engine="h5netcdf")


if __name__ == "__main__":
    main()
