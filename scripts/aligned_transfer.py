"""Transfer up to symmetry: aligned vs unaligned ticket transfer, input-permutation recovery, ticket IoU.

    python scripts/aligned_transfer.py --dir data/transfer-family [--pairs default:shuffled default:gen_seed
        shear:shuffled] [--seeds 0 1 2] [--align inputs inputs+units] [--levels 2,4,6,8,10,12] [--jobs 1]
        [--iou-member default] [--trained-runs data/mnist1d-mlp/seed*.h5]

Reads run files named ``<member>-s<seed>.h5`` in ``--dir`` (as ``scripts/record_transfer_family.py`` writes
them). For every pair SOURCE:TARGET and seed s it transfers the tickets of ``SOURCE-s<s>.h5`` into
``TARGET-s<s>.h5`` without alignment and with each ``--align`` mode, as branches of the target file
(default levels: those of the existing unaligned transfer). Every transfer is resumable: re-running skips
what is done and only reprints the tables. Then it prints

1. the input permutation each aligned branch stored, scored against the ground truth where it is known
   (MNIST-1D's ``shuffle_seq`` permutation, replayed from its generator), with its confidence;
2. per pair and level: the target's own ticket and the gap (transferred minus own ticket, mean ± std over
   seeds) without and with alignment, and whether each is matching;
3. the estimators compared (the default graph matching, FAQ alone, per-feature statistics alone): fraction of
   features recovered exactly on MNIST-1D pairs and on a synthetic task with a planted permutation;
4. mask IoU between the tickets of two seeds of one task before and after hidden-unit matching, against
   chance: matching the masks themselves (files without trained weights), and Git Re-Basin on the dense
   trained weights for ``--trained-runs``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np


def member_files(folder: Path) -> dict[tuple[str, int], Path]:
    """``{(member, seed): path}`` of the ``<member>-s<seed>.h5`` files in ``folder``."""
    out = {}
    for p in sorted(folder.glob("*-s*.h5")):
        member, _, seed = p.stem.rpartition("-s")
        if seed.isdigit():
            out[(member, int(seed))] = p
    return out


def existing_levels(source: Path, target: Path) -> list[int]:
    """Levels of the unaligned transfer of ``source``'s tickets already in ``target``."""
    import h5py

    with h5py.File(source, "r") as f:
        run_id = f.attrs["run_id"]
        run_id = run_id.decode() if isinstance(run_id, bytes) else str(run_id)
    with h5py.File(target, "r") as f:
        g = f.get(f"branches/transfer_{run_id}")
        return [] if g is None else np.flatnonzero(g["level_done"][...]).tolist()


def target_job(args) -> str:
    """Every transfer into one target file (one process per file: a file is written by one process)."""
    from rgnet.imp.transfer import transfer

    target, jobs = args
    for source, levels, align in jobs:
        transfer(source, target, levels, align=align, progress=False)
    return str(target)


def permutation_table(files, pairs, seeds, modes) -> str:
    import h5py

    from rgnet.align import true_permutation
    from rgnet.config import TaskConfig
    from rgnet.tasks import input_order

    def order(path):
        with h5py.File(path, "r") as f:
            cfg = json.loads(f.attrs["config"])["task"]
        return input_order(TaskConfig(cfg["name"], cfg["params"]))

    lines = ["input permutation estimated from data (stored in the aligned branch) vs the generator's ground truth",
             f"{'pair':<22} {'seed':>4} {'align':<13} {'recovered':>9} {'confidence':>10} {'agree':>6} {'cosine':>7}"]
    for (s, t), seed, mode in itertools.product(pairs, seeds, [m for m in modes if m != "none"]):
        src, tgt = files[(s, seed)], files[(t, seed)]
        with h5py.File(src, "r") as f:
            run_id = str(f.attrs["run_id"])
        suffix = {"inputs": "_align_inputs", "inputs+units": "_align_inputs_units"}[mode]
        with h5py.File(tgt, "r") as f:
            attrs = f[f"branches/transfer_{run_id}{suffix}"].attrs
            perm = np.array(json.loads(attrs["input_permutation"]))
            conf = json.loads(attrs["input_alignment"])
        o_s, o_t = order(src), order(tgt)
        rec = "n/a" if o_s is None or o_t is None else f"{np.mean(perm == true_permutation(o_s, o_t)):.3f}"
        lines.append(f"{f'{s} -> {t}':<22} {seed:>4} {mode:<13} {rec:>9} {conf['confidence']:>10.1f} "
                     f"{conf.get('agreement', np.nan):>6.2f} {conf['cosine']:>7.3f}")   # agreement: since [relevance]
    return "\n".join(lines)


def gap_table(files, pairs, seeds, modes) -> str:
    import h5py

    from rgnet.tasks import task_label
    from rgnet.verdicts import transfer_matrix

    labels = {}
    for (member, _), p in files.items():
        with h5py.File(p, "r") as f:
            labels[task_label(f.attrs["config"])] = member
    targets = sorted({t for _, t in pairs})
    m = transfer_matrix([files[(t, s)] for t in targets for s in seeds], labels=labels)
    arm = {"none": "", "inputs": " [aligned inputs]", "inputs+units": " [aligned inputs+units]"}
    lines = [f"gap = transferred minus the target's own ticket, points of {m.attrs['metric']} (mean ± std over "
             f"{len(seeds)} seeds, paired); * = matching ({m.attrs['rule']})"]
    for s, t in pairs:
        lines.append(f"\n{s} -> {t}   (target dense {100 * float(m.dense_acc.sel(target=t)):.1f}"
                     f"±{100 * float(m.dense_std.sel(target=t)):.1f})")
        head = f"{'level':>5} {'density %':>9} {'own':>10}" + "".join(f" {'gap ' + a:>22}" for a in modes)
        lines.append(head)
        rows = [f"{s}{arm[a]}" for a in modes]
        present = [r for r in rows if r in m.source.values]
        if not present:
            continue
        levels = [int(lv) for lv in m.level.values
                  if any(float(m.n_transfers.sel(source=r, target=t, level=lv)) > 0 for r in present)]
        for lv in levels:
            c = m.sel(target=t, level=lv)
            own = f"{100 * float(c.own_acc):.1f}" + ("*" if bool(c.own_matching) else " ")
            cells = []
            for r in rows:
                if r not in m.source.values or float(c.n_transfers.sel(source=r)) == 0:
                    cells.append(f"{'-':>22}")
                    continue
                g, sd = 100 * float(c.gap.sel(source=r)), 100 * float(c.gap_std.sel(source=r))
                star = "*" if bool(c.transfer_matching.sel(source=r)) else " "
                cells.append(f"{f'{g:+.1f}±{sd:.1f}{star}':>22}")
            lines.append(f"{lv:>5} {100 * float(c.density):>9.1f} {own:>10}" + "".join(f" {x}" for x in cells))
        verdicts = []
        for a, r in zip(modes, rows):
            if r in m.source.values:
                c = m.sel(source=r, target=t)
                dens = float(c.transfer_winning_density)
                verdicts.append(f"{a}: {'transfers' if bool(c.transfers) else 'does not transfer'} (matching down "
                                f"to {'none' if np.isnan(dens) else f'{100 * dens:.1f} %'})")
        own_w = float(m.winning_density.sel(target=t))
        lines.append("   " + "; ".join(verdicts) + f"; own winning density {100 * own_w:.1f} %")
    return "\n".join(lines)


def estimator_table(files, pairs, sizes=(250, 1000, 4000), seeds=range(5)) -> str:
    """Fraction of features recovered exactly by each estimator: MNIST-1D pairs (truth from the generator)
    and a synthetic task with a planted permutation (unpaired Gaussian samples, random correlations)."""
    import h5py

    from rgnet.align import INPUT_METHODS, align_inputs, planted_features, true_permutation
    from rgnet.config import TaskConfig
    from rgnet.tasks import input_order, load_task

    def task(member):
        with h5py.File(files[(member, min(s for m, s in files if m == member))], "r") as f:
            cfg = json.loads(f.attrs["config"])["task"]
        return TaskConfig(cfg["name"], cfg["params"])

    members = {m for m, _ in files}
    extra = [("gen_seed", "shuffled"), ("noise", "shuffled"), ("default", "noise")]
    todo = [p for p in dict.fromkeys([*pairs, *extra]) if set(p) <= members and task(p[0]).name == "mnist1d"
            and task(p[1]).name == "mnist1d"]
    lines = ["input alignment estimators: fraction of features recovered exactly (held-out confidence of the "
             "default in brackets, the fraction of features both halves of the data match alike after the slash)",
             f"{'pair / planted task':<26}" + "".join(f" {m:>16}" for m in INPUT_METHODS)]
    for s, t in todo:
        ts, tt = load_task(task(s)), load_task(task(t))
        truth = true_permutation(input_order(task(s)), input_order(task(t)))
        cells = []
        for m in INPUT_METHODS:
            r = align_inputs(ts.x_train, tt.x_train, ts.y_train, tt.y_train, method=m)
            extra_txt = f" ({float(r.confidence):.0f}/{float(r.agreement):.2f})" if m == "qap" else ""
            cells.append(f"{np.mean(r.permutation.values == truth):.2f}{extra_txt}")
        lines.append(f"{f'{s} -> {t}':<26}" + "".join(f" {c:>16}" for c in cells))
    for n in sizes:
        per = {m: [] for m in INPUT_METHODS}
        conf = []
        for seed in seeds:
            xs, xt, perm = planted_features(n=n, seed=seed)
            for m in INPUT_METHODS:
                r = align_inputs(xs, xt, method=m)
                per[m].append(float(np.mean(r.permutation.values == perm)))
                if m == "qap":
                    conf.append((float(r.confidence), float(r.agreement)))
        c = np.mean(conf, 0)
        cells = [f"{np.mean(per[m]):.2f}" + (f" ({c[0]:.0f}/{c[1]:.2f})" if m == "qap" else "") for m in INPUT_METHODS]
        lines.append(f"{f'planted, {n} samples':<26}" + "".join(f" {x:>16}" for x in cells))
    lines.append(f"(planted: mean over {len(list(seeds))} seeds; MNIST-1D pairs compare other samples unless "
                 "both share generator seed and draws)")
    return "\n".join(lines)


def iou_table(paths: list[Path], by: str, title: str) -> str:
    import xarray as xr

    from rgnet.align import ticket_iou

    parts = [ticket_iou(a, b, by=by) for a, b in itertools.combinations(paths, 2)]
    if not parts:
        return f"{title}: fewer than two runs"
    r = xr.concat(parts, "pair").sel(layer="all")
    lines = [f"{title} ({len(parts)} seed pairs, all layers pooled; mean over pairs)",
             f"{'level':>5} {'density %':>9} {'before':>7} {'after':>7} {'chance':>7} {'matched random':>14}"]
    for lv in r.level.values:
        c = r.sel(level=lv).mean("pair")
        lines.append(f"{int(lv):>5} {100 * float(c.density):>9.1f} {float(c.iou_before):>7.3f} "
                     f"{float(c.iou_after):>7.3f} {float(c.iou_chance):>7.3f} {float(c.iou_null_after):>14.3f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="folder with <member>-s<seed>.h5 run files (written into)")
    ap.add_argument("--pairs", nargs="+", default=["default:shuffled", "default:gen_seed", "shear:shuffled"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--align", nargs="+", default=["inputs", "inputs+units"], help="aligned arms to run")
    ap.add_argument("--levels", help="levels to transfer (default: those of the existing unaligned transfer)")
    ap.add_argument("--jobs", type=int, default=1, help="parallel worker processes (one per target file)")
    ap.add_argument("--iou-member", default="default", help="task whose seeds' tickets are compared")
    ap.add_argument("--trained-runs", nargs="*", default=[], help="run files with trained weights (same task, "
                                                                 "several seeds) for Git Re-Basin IoU")
    a = ap.parse_args()

    from rgnet.align import check_align
    from rgnet.imp.names import parse_levels

    for mode in a.align:
        check_align(mode)
    modes = ["none", *[m for m in a.align if m != "none"]]
    files = member_files(Path(a.dir))
    pairs = [tuple(p.split(":")) for p in a.pairs]
    missing = sorted({f"{m}-s{s}.h5" for pair in pairs for m in pair for s in a.seeds} -
                     {f"{m}-s{s}.h5" for m, s in files})
    if missing:
        raise SystemExit(f"missing run files in {a.dir}: {', '.join(missing)}")
    jobs: dict[Path, list] = {}
    for (s, t), seed in itertools.product(pairs, a.seeds):
        src, tgt = files[(s, seed)], files[(t, seed)]
        levels = parse_levels(a.levels) if a.levels else existing_levels(src, tgt)
        if not levels:
            raise SystemExit(f"no unaligned transfer of {src.name} in {tgt.name} to take levels from; pass --levels")
        jobs.setdefault(tgt, []).extend((src, levels, m) for m in modes)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.jobs, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(target_job, jobs.items()))
    print(f"transfers done (or already there) after {time.perf_counter() - t0:.0f} s\n", flush=True)

    print(permutation_table(files, pairs, a.seeds, modes))
    print("\n" + gap_table(files, pairs, a.seeds, modes))
    print("\n" + estimator_table(files, pairs))
    seeds_of = sorted(p for (m, _), p in files.items() if m == a.iou_member)
    print("\n" + iou_table(seeds_of, "mask", f"ticket mask IoU, {a.iou_member} seeds, units matched on the masks"))
    if a.trained_runs:
        print("\n" + iou_table([Path(p) for p in a.trained_runs], "trained",
                               "ticket mask IoU, units matched by Git Re-Basin on the dense trained weights"))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
