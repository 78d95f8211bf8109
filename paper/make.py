"""Regenerate every figure and table of the paper, and the write-up, from the run files in data/ alone.

    python paper/make.py [--data DIR] [--out DIR] [--only NAME ...] [--no-cache]

Reads ``DIR/mnist1d-mlp/*.h5`` (the default job, several seeds, baselines), ``DIR/transfer-family/*.h5`` (a task
family with transfer and aligned-transfer branches) and ``DIR/protocol/early_stopping.nc``; writes
``OUT/figures/NAME.{pdf,png}``, ``OUT/tables/NAME.{csv,md}`` (and ``.nc`` where a table is an xarray object) and
``OUT/paper.md`` from the template ``paper/paper.md.in``, whose numbers all come from the tables written here
(checked: a number of the text that no table holds makes the run exit 1, naming it). The Method is read from the
configs stored in the run files. A figure whose input is missing is left out with a printed note (and a line in
paper.md), never faked. Same data, same bytes: bootstraps have fixed seeds and figures carry no date or version.
The universality analysis (the slow part) is cached in ``OUT/tables/universality.nc`` under the SHA-256 of its
input files and of the code that computes it (rgnet/universality, rgnet/verdicts, rgnet/rg), so it reruns only
when either changes. Each step is printed as it starts and timed when it ends.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import re
import sys
import time
import warnings
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

import rgnet  # noqa: E402
from rgnet import plot, rg  # noqa: E402
from rgnet.errors import ConfigError, DataError, StoreError  # noqa: E402

RGNET_VERSION = importlib.metadata.version("rgnet")
ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "paper.md.in"
#: Run files named ``<label>-s<seed>.h5`` (record scripts) or ``<label>-s<seed>-<run_id>.h5`` (sweeps).
MEMBER = re.compile(r"^(?P<label>.+)-s(?P<seed>\d+)(-[0-9a-f]{16})?\.h5$")
MAIN, FAMILY, PROTOCOL = "mnist1d-mlp", "transfer-family", "protocol/early_stopping.nc"
PHASE = "phase"   # the derived dataset of the phase family (scripts/phase_derive.py)
#: Options of the universality analysis; part of the cache key.
UNIVERSALITY: dict = {}   # rgnet.universality's own defaults (alpha, bootstraps, seed): one source
#: The pre-registered analysis (paper/preregistration.md, fixed before any data of the next family): the primary
#: signature, its score, and the baselines the Holm adjustment of the decision runs over. Everything else the
#: paper reports is exploratory. tests/test_paper.py checks these against the pre-registration's text.
PRIMARY, PRIMARY_SCORE = "dmd_ticket", "tau_w"
PREREGISTERED_BASELINES = ("mask_iou", "input_distance", "additive", "dense_accuracy")
DECISION_LEVEL = 0.05
#: Amendment 1 (the phase family): its primary signature and the baseline it must beat (the difference of tau_w
#: with its interval over resampled tasks).
PHASE_PRIMARY, PHASE_VERSUS = "relevance_inputs", "mask_iou"
# The code of the analysis is part of the cache key too: a changed score, rule or signature (rgnet.rg computes
# the flow signatures) recomputes it.
ANALYSIS_CODE = [f for pkg in ("universality", "verdicts", "rg") for f in sorted((ROOT / "rgnet" / pkg).glob("*.py"))]
N_BOOT, BOOT_SEED = 200, 0  # bootstrap replicates of the linearised RG maps, and their fixed seed
#: Metadata written into the figures: none that changes between runs or installs (no dates, no versions), so
#: the same data give byte-identical files.
PDF_METADATA = {"Creator": None, "Producer": None, "CreationDate": None}
PNG_METADATA = {"Software": None}
#: Numbers in the text that are not results read from a table (they name the software and the data).
NOT_RESULTS = ("data_dir", "rgnet_version")


class Missing(Exception):
    """An input of a figure or table is not in the data directory (the step is left out, with this reason)."""


# ---- inputs ---------------------------------------------------------------------------------------------


def run_files(folder: Path) -> list[Path]:
    """Run files of an experiment folder: every ``*.h5`` with at least one complete level."""
    if not folder.is_dir():
        raise Missing(f"{folder} does not exist")
    files = []
    for p in sorted(folder.glob("*.h5")):
        try:
            if rgnet.open_run(p).sizes.get("level", 0):
                files.append(p)
        except (StoreError, DataError, OSError, KeyError, ValueError):
            continue  # not a run file (e.g. verdicts.nc renamed), or one still being created
    if not files:
        raise Missing(f"{folder} holds no run file with a complete level")
    return files


def member_labels(files: list[Path]) -> dict[str, str]:
    """Task key -> short name taken from the file names (``noise-s0.h5`` -> ``noise``); files named otherwise
    keep their task key."""
    from rgnet.store.writer import check_run_file
    from rgnet.tasks import task_label

    labels = {}
    for p in files:
        m = MEMBER.match(p.name)
        if m:
            labels[task_label(check_run_file(p)["config"])] = m["label"]
    return labels


def content_hash(files: list[Path], extra: dict) -> str:
    """SHA-256 of the files' names and bytes (and of their ``.tensors`` folders), and of ``extra``."""
    h = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    for p in files:
        parts = [p] + (sorted(q for q in Path(f"{p}.tensors").rglob("*") if q.is_file())
                       if Path(f"{p}.tensors").is_dir() else [])
        for q in parts:
            h.update(q.name.encode())
            with open(q, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


class Paper:
    """The inputs (read lazily, once) and the outputs (figures, tables, numbers for the text, notes)."""

    def __init__(self, data: Path, out: Path, cache: bool = True, clear: bool = True):
        self.data, self.out, self.cache = data, out, cache
        self.figures, self.tables = out / "figures", out / "tables"
        self.figures.mkdir(parents=True, exist_ok=True)
        self.tables.mkdir(parents=True, exist_ok=True)
        if clear:  # a figure left out this time must not survive from an earlier run (the cache stays)
            for old in [*self.figures.glob("*.p[dn][fg]"), *self.tables.glob("*.csv"), *self.tables.glob("*.md")]:
                old.unlink()
        self.numbers: dict[str, str] = {}
        self.counts: set[str] = set()  # numbers that count rows of a table (checked as whole numbers only)
        self.sections: dict[str, str | None] = {}  # step -> None (made) or the reason it was left out
        self.notes: list[str] = []
        self.made: list[str] = []
        self.universality: xr.Dataset | None = None

    # inputs
    @cached_property
    def main_files(self) -> list[Path]:
        return run_files(self.data / MAIN)

    @cached_property
    def main_runs(self) -> xr.Dataset:
        return rgnet.open_runs(self.main_files).load()

    @cached_property
    def family_files(self) -> list[Path]:
        return run_files(self.data / FAMILY)

    @cached_property
    def family_labels(self) -> dict[str, str]:
        return member_labels(self.family_files)

    @cached_property
    def family_runs(self) -> xr.Dataset:
        runs = rgnet.open_runs(self.family_files).drop_dims("eval", errors="ignore").load()
        names = [MEMBER.match(Path(str(f)).name) for f in runs["path"].values]
        return runs.assign_coords(member=("run", [m["label"] if m else str(t)
                                                  for m, t in zip(names, runs["task"].values)]))

    @cached_property
    def matrix(self) -> xr.Dataset:
        m = rgnet.transfer_matrix(self.family_files, labels=self.family_labels)
        if not m.sizes.get("source") or not np.isfinite(m["gap_at_winning"].values).any():
            raise Missing(f"the runs in {self.data / FAMILY} hold no transfer branch")
        return m

    # outputs
    def save(self, fig, name: str) -> None:
        save_figure(fig, self.figures / name)
        self.made.append(f"figures/{name}.png")

    def table(self, df: pd.DataFrame, name: str, digits: int = 4) -> pd.DataFrame:
        df.to_csv(self.tables / f"{name}.csv", index=False, float_format=f"%.{digits + 2}g")
        (self.tables / f"{name}.md").write_text(markdown(df, digits) + "\n")
        self.made.append(f"tables/{name}.csv")
        return df

    def number(self, **values) -> None:
        """Numbers for the text, each read from a table this run wrote (:func:`untraceable` checks it)."""
        self.numbers.update({k: str(v) for k, v in values.items()})

    def count(self, **values: int) -> None:
        """Numbers for the text that count rows of a table (tasks, pairs, seeds)."""
        for k, v in values.items():
            if not isinstance(v, (int, np.integer)):
                raise TypeError(f"count {k}={v!r} is not a whole number")
        self.number(**values)
        self.counts.update(values)


def save_figure(fig, stem: Path) -> None:
    """``stem.pdf`` and ``stem.png`` with pinned metadata (:data:`PDF_METADATA`, :data:`PNG_METADATA`); closes
    ``fig``."""
    fig.savefig(stem.with_suffix(".pdf"), metadata=PDF_METADATA)
    fig.savefig(stem.with_suffix(".png"), metadata=PNG_METADATA)
    plt.close(fig)


def markdown(df: pd.DataFrame, digits: int = 4) -> str:
    """A pipe table (no extra dependency): floats to ``digits`` significant figures, NaN as a dash."""
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "–" if not np.isfinite(v) else f"{v:.{digits}g}"
        return str(v)

    rows = [list(map(str, df.columns)), ["---"] * len(df.columns)]
    rows += [[cell(v) for v in r] for r in df.itertuples(index=False)]
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def pct(v: float, digits: int = 1) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{100 * v:.{digits}f}"


def pm(mean: float, std: float, digits: int = 1) -> str:
    """``mean ± std`` in percent points."""
    return f"{pct(mean, digits)} ± {pct(std, digits)}"


# ---- the steps: each makes figures and tables and fills numbers for the text ------------------------------

STEPS: dict[str, Callable] = {}


def step(name: str):
    """Register a step; paper.md.in's ``<!-- begin NAME -->`` block holds the text that needs its numbers."""
    def register(fn):
        STEPS[name] = fn
        return fn
    return register


STOP_RULES = {"val_acc": "max. validation accuracy", "val_loss": "min. validation loss"}


def early_stop_rule(files) -> str:
    cfg = json.loads(rgnet.open_run(files[0]).attrs["config"])
    return STOP_RULES.get(cfg["train"].get("early_stop", ""), str(cfg["train"].get("early_stop", "")))


def architecture(path: Path) -> str:
    """``in → hidden … → out`` from the shapes of a run's stored initial weights (``(out, in)`` per layer)."""
    shapes = [v.shape for k, v in rgnet.open_tensors(path, "init").data_vars.items() if k.endswith(".weight")]
    return " → ".join(str(s[1]) for s in shapes[:1]) + "".join(f" → {s[0]}" for s in shapes)


def distinct(values) -> str:
    """The distinct values, in order of appearance, joined (one value: itself)."""
    return ", ".join(dict.fromkeys(str(v) for v in values))


def seed_range(seeds) -> str:
    s = sorted(set(int(v) for v in seeds))
    return f"{s[0]}–{s[-1]}" if s == list(range(s[0], s[-1] + 1)) and len(s) > 1 else ", ".join(map(str, s))


def method_rows(files: list[Path], experiment: str, labels: dict[str, str]) -> dict:
    """One experiment's protocol as stored in its run files' configs (never typed): where its files disagree,
    every value they hold."""
    from rgnet.tasks import task_label

    cfgs = [json.loads(rgnet.open_run(f).attrs["config"]) for f in files]
    keys = [task_label(c) for c in cfgs]
    tasks = dict.fromkeys(f"{labels[k]} = {k}" if labels.get(k, k) != k else k for k in keys)
    train, prune = [c["train"] for c in cfgs], [c["prune"] for c in cfgs]
    return {"experiment": experiment, "tasks": "; ".join(tasks), "n_tasks": len(set(keys)), "runs": len(files),
            "seeds": seed_range(c["seed"] for c in cfgs), "model": distinct(c["model"]["name"] for c in cfgs),
            "architecture": distinct(architecture(f) for f in files),
            "steps": distinct(t["steps"] for t in train), "batch_size": distinct(t["batch_size"] for t in train),
            "optimizer": distinct(t["optimizer"] for t in train), "lr": distinct(f"{t['lr']:g}" for t in train),
            "weight_decay": distinct(f"{t['weight_decay']:g}" for t in train),
            "eval_every": distinct(t["eval_every"] for t in train),
            "early_stop": distinct(STOP_RULES.get(t["early_stop"], t["early_stop"]) for t in train),
            "prune_percent": distinct(f"{100 * q['fraction']:g}" for q in prune),
            "scope": distinct(q["scope"] for q in prune), "levels": distinct(q["levels"] for q in prune),
            "rewind": distinct(q["rewind"] for q in prune)}


def runs_sentence(r: pd.Series, role: str) -> str:
    """The Method's sentence about one experiment, from its row of table ``method``."""
    tasks = f"task {r.tasks}" if r.n_tasks == 1 else f"{r.n_tasks} tasks ({r.tasks})"
    return (f"`{r.experiment}` ({role}): {tasks}; model {r.model} ({r.architecture}) trained {r.steps} "
            f"steps per level ({r.optimizer}, lr {r.lr}, batch {r.batch_size}, weight decay {r.weight_decay}, "
            f"evaluated every {r.eval_every} steps); IMP with {r.prune_percent} % {r.scope} magnitude pruning per "
            f"level for {r.levels} levels, rewinding to iteration {r.rewind}; {r.runs} runs (seeds {r.seeds}).")


@step("method")
def make_method(p: Paper) -> None:
    rows, roles = [], {}
    for folder, files, labels, role in ((MAIN, lambda: p.main_files, lambda: {}, "the main experiment"),
                                        (FAMILY, lambda: p.family_files, lambda: p.family_labels,
                                         "the transfer family")):
        try:
            rows.append(method_rows(files(), folder, labels()))
            roles[folder] = role
        except Missing:
            continue
    if not rows:
        raise Missing(f"no runs in {p.data / MAIN} or {p.data / FAMILY}")
    df = p.table(pd.DataFrame(rows), "method")
    p.number(method_runs="\n- ".join(runs_sentence(r, roles[r.experiment]) for r in df.itertuples()))


def ladder_table(t: xr.Dataset, metric: str) -> pd.DataFrame:
    rows = []
    for exp in t["experiment"].values:
        for arm in t["arm"].values:
            s = t.sel(experiment=exp, arm=arm)
            for lv in t["level"].values:
                n = int(s["seeds"].sel(level=lv))
                if n:
                    rows.append({"experiment": str(exp), "metric": metric, "arm": str(arm), "level": int(lv),
                                 "density": float(s["density"].sel(level=lv)),
                                 "acc_mean": float(s["acc_mean"].sel(level=lv)),
                                 "acc_std": float(s["acc_std"].sel(level=lv)), "seeds": n,
                                 "matching": bool(s["matching"].sel(level=lv))})
    return pd.DataFrame(rows)


def winning_table(t: xr.Dataset, metric: str) -> pd.DataFrame:
    rows = [{"experiment": str(e), "metric": metric, "arm": str(a),
             "winning_level": int(t["winning_level"].sel(experiment=e, arm=a)),
             "winning_density": float(t["winning_density"].sel(experiment=e, arm=a)),
             "dense_mean": float(t["dense_mean"].sel(experiment=e)),
             "dense_std": float(t["dense_std"].sel(experiment=e)),
             "seeds": int(t["seeds"].sel(experiment=e, arm=a).max())}
            for e in t["experiment"].values for a in t["arm"].values if int(t["seeds"].sel(experiment=e, arm=a).max())]
    return pd.DataFrame(rows)


@step("ladder")
def make_ladder(p: Paper) -> None:
    early, final = (rgnet.winning_tickets(p.main_files, metric=m) for m in ("test_acc", "test_acc_final"))
    p.save(plot.ladder_panels(early, final), "ladder")
    p.table(pd.concat([ladder_table(early, "test_acc"), ladder_table(final, "test_acc_final")]), "ladder")
    win = p.table(pd.concat([winning_table(early, "test_acc"), winning_table(final, "test_acc_final")]), "winning")
    w = win.set_index(["metric", "arm"])
    imp = w.loc[("test_acc", "imp")]
    p.table(pd.DataFrame([{"use": "matching (ladder) and transfer", "rule": early.attrs["rule_name"],
                           "text": early.attrs["rule"]}]), "rules")
    p.count(main_seeds=int(imp["seeds"]))
    p.number(main_dense=pm(imp["dense_mean"], imp["dense_std"]),
             main_dense_final=pm(w.loc[("test_acc_final", "imp")]["dense_mean"],
                                 w.loc[("test_acc_final", "imp")]["dense_std"]),
             verdict_rule=f"`{early.attrs['rule_name']}`: {early.attrs['rule']}",
             stop_rule=early_stop_rule(p.main_files).replace("max.", "maximum").replace("min.", "minimum"))
    for metric, tag in (("test_acc", "es"), ("test_acc_final", "final")):
        for arm in ("imp", "reinit", "random_prune_layerwise", "random_prune_global"):
            key = (metric, arm)
            p.number(**{f"win_{tag}_{arm}": pct(w.loc[key]["winning_density"], 1) if key in w.index else "n/a"})
    rewind = [a for a in win["arm"].unique() if str(a).startswith("rewind_")]
    p.number(rewind_arm=rewind[0].replace("rewind_", "step ") if rewind else "n/a",
             win_es_rewind=pct(w.loc[("test_acc", rewind[0])]["winning_density"], 1) if rewind else "n/a")
    lad = ladder_table(early, "test_acc").set_index(["arm", "level"])
    last = int(early["level"].max())
    for arm in ("imp", "reinit", "random_prune_layerwise"):
        ok = (arm, last) in lad.index
        p.number(**{f"last_{arm}": pm(lad.loc[(arm, last)]["acc_mean"], lad.loc[(arm, last)]["acc_std"])
                    if ok else "n/a"})
    p.number(last_density=pct(float(early["density"].sel(level=last).max()), 1))


@step("early_stop")
def make_early_stop(p: Paper) -> None:
    runs = p.main_runs
    p.save(plot.early_stop(runs, rule=early_stop_rule(p.main_files)).figure, "early_stop")
    s = runs["stop_iteration"].astype(float)
    density = runs["density"].mean("run") if "run" in runs["density"].dims else runs["density"]
    steps = distinct(json.loads(rgnet.open_run(f).attrs["config"])["train"]["steps"] for f in p.main_files)
    df = pd.DataFrame({"level": runs["level"].values, "density": density.values,
                       "stop_mean": s.mean("run").values, "stop_std": s.std("run", ddof=1).values,
                       "runs": int(runs.sizes["run"]), "steps": steps})
    p.table(df, "early_stop")
    later = df.stop_mean.iloc[-1] - df.stop_mean.iloc[0]
    spread = np.nanmax([df.stop_std.iloc[0], df.stop_std.iloc[-1], 0])
    p.number(stop_trend="later than" if later > spread else "earlier than" if later < -spread else
             "within one standard deviation of",
             stop_dense=f"{df.stop_mean.iloc[0]:.0f} ± {df.stop_std.iloc[0]:.0f}",
             stop_last=f"{df.stop_mean.iloc[-1]:.0f} ± {df.stop_std.iloc[-1]:.0f}", steps=steps)


@step("weight_flow")
def make_weight_flow(p: Paper) -> None:
    p.save(plot.weight_flow(p.main_runs, run=0), "weight_flow")
    std = p.main_runs["w_std"].isel(run=0)
    density = p.main_runs["density"]
    density = density.isel(run=0) if "run" in density.dims else density
    df = pd.DataFrame([{"layer": str(ly), "level": int(lv), "density": float(density.sel(level=lv)),
                        "w_std": float(std.sel(layer=ly, level=lv)),
                        "w_kurtosis": float(p.main_runs["w_kurtosis"].isel(run=0).sel(layer=ly, level=lv))}
                       for ly in std["layer"].values for lv in std["level"].values])
    df["w_std_over_dense"] = df.w_std / df.groupby("layer").w_std.transform("first")
    p.table(df, "weight_moments")
    last = df[df.level == df.level.max()]
    ratio = last.w_std_over_dense.to_numpy()
    p.number(std_ratio=", ".join(f"{ly} ×{r:.2f}" for ly, r in zip(last.layer, ratio)),
             std_trend="grows in every layer" if (ratio > 1).all() else "shrinks in every layer" if (ratio < 1).all()
             else "grows in some layers and shrinks in others")


@step("flow_speed")
def make_flow_speed(p: Paper) -> None:
    flow = rg.wasserstein_flow(p.main_runs)
    p.save(plot.flow_speed(flow).figure, "flow_speed")
    rows = []
    for lv in flow["level"].values:
        for ly in flow["layer"].values:
            f = flow.sel(level=lv, layer=ly)
            rows.append({"step": f"{lv}->{lv + 1}", "layer": str(ly), "w1_shape_mean": float(f["w1_shape"].mean()),
                         "w1_shape_std": float(f["w1_shape"].std(ddof=1)), "w1_mean": float(f["w1"].mean()),
                         "d_log_scale_mean": float(f["d_log_scale"].mean())})
    p.table(pd.DataFrame(rows).dropna(subset=["w1_shape_mean"]), "flow_speed")
    speed = flow["speed"]
    total = p.table(pd.DataFrame([{"step": f"{lv}->{lv + 1}", "level": int(lv),
                                   "speed_mean": float(speed.sel(level=lv).mean()),
                                   "speed_std": float(speed.sel(level=lv).std(ddof=1)),
                                   "runs": int(speed.sel(level=lv).count())} for lv in flow["level"].values])
                    .dropna(subset=["speed_mean"]), "flow_speed_total")
    slow = total.loc[total.speed_mean.idxmin()]
    p.number(speed_first=f"{total.speed_mean.iloc[0]:.3f}", speed_last=f"{total.speed_mean.iloc[-1]:.3f}",
             speed_min_step=str(slow.step).replace("->", " → "))


def lin_table(lin: xr.Dataset, task: str) -> list[dict]:
    """One row per eigenvalue; ``partner``: the mode of its conjugate partner (-1: real), with which it shares one
    exponent and one interval (a conjugate pair is one mode, a rotation)."""
    lam = np.asarray(lin["eigenvalues"].values, complex)
    ci = np.asarray(lin["exponents_ci"].transpose("mode", "bound").values, float)
    return [{"task": task, "mode": k, "partner": int(lin["partner"].values[k]), "eigenvalue_re": lam[k].real,
             "eigenvalue_im": lam[k].imag, "abs_eigenvalue": abs(lam[k]),
             "exponent": float(lin["exponents"].values[k]), "exponent_lo": ci[k, 0], "exponent_hi": ci[k, 1],
             "kind": str(lin["kind"].values[k]), "b": float(lin.attrs["scale_factor"]),
             "n_boot": int(lin.attrs["n_boot"])} for k in range(len(lam))]


def linearise(traj: xr.DataArray, **kwargs) -> xr.Dataset:
    """The paper's linearised map: :data:`N_BOOT` replicates, fixed :data:`BOOT_SEED`."""
    return rg.linearise(traj, n_boot=N_BOOT, seed=BOOT_SEED, **kwargs)


@step("coupling_flow")
def make_coupling_flow(p: Paper) -> None:
    g = rg.couplings(p.main_runs, "scale")
    lin = linearise(g)
    names = [str(c) for c in g["coupling"].values]
    with plot.style():
        fig, axes = plt.subplots(1, 2, figsize=(plot.PAGE, 2.8), layout="constrained")
    for ax, (x, y) in zip(axes, [(0, 1), (1, 2)] if len(names) > 2 else [(0, 1)]):
        plot.coupling_flow(g, lin, x=x, y=y, ax=ax)
        if ax.get_legend():
            ax.get_legend().remove()  # one legend for both panels, below them
    if len(names) <= 2:
        axes[1].set_visible(False)
    with plot.style():
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=6.5)
    p.save(fig, "coupling_flow")
    df = pd.DataFrame(lin_table(lin, MAIN))
    df["fixed_point"] = ", ".join(f"{n}={v:.3f}" for n, v in zip(names, np.real(lin["fixed_point"].values)))
    p.table(df, "linearised_map")
    modes = df[(df.partner < 0) | (df.partner > df["mode"])]  # a conjugate pair once: it is one mode
    p.number(lam_main=", ".join(lam_text(r) for r in modes.itertuples()),
             y_main=", ".join(f"{r.exponent:+.2f} [{r.exponent_lo:+.2f}, {r.exponent_hi:+.2f}]"
                              for r in modes.itertuples()),
             kinds_main=", ".join(modes.kind), b_main=f"{df.b.iloc[0]:.3f}", boot_main=int(df.n_boot.iloc[0]))


def lam_text(r) -> str:
    """``|λ| = 0.854 (a conjugate pair 0.832 ± 0.196i: a rotation)`` or ``0.479`` for a real eigenvalue."""
    if r.partner < 0:
        return f"{r.abs_eigenvalue:.3f}"
    return f"{r.abs_eigenvalue:.3f} (the pair {r.eigenvalue_re:.3f} ± {abs(r.eigenvalue_im):.3f}i, a rotation)"


def task_groups(p: Paper) -> dict[str, xr.Dataset]:
    """Runs per task: the family members (when present) and the main experiment."""
    groups = {}
    try:
        fam = p.family_runs
        for member in dict.fromkeys(fam["member"].values):
            groups[str(member)] = fam.isel(run=np.flatnonzero(fam["member"].values == member))
    except Missing:
        pass
    try:
        groups[MAIN] = p.main_runs
    except Missing:
        pass
    if not groups:
        raise Missing(f"no runs in {p.data / MAIN} or {p.data / FAMILY}")
    return groups


def group_protocol(runs: xr.Dataset) -> dict:
    """The task key and the training steps per level of a group of runs, read from their files."""
    steps = [json.loads(rgnet.open_run(Path(str(f))).attrs["config"])["train"]["steps"] for f in runs["path"].values]
    return {"task_key": distinct(runs["task"].values), "steps": distinct(steps)}


@step("exponents")
def make_exponents(p: Paper) -> None:
    lins, rows = {}, []
    for task, runs in task_groups(p).items():
        try:
            lins[task] = linearise(rg.couplings(runs, "scale"))
        except ConfigError as err:  # too few levels for a fit: that task is left out
            print(f"  exponents: {task} left out ({err})")
            continue
        rows += [{**r, **group_protocol(runs)} for r in lin_table(lins[task], task)]
    df = p.table(pd.DataFrame(rows), "exponents")
    lead = df[df["mode"] == 0]
    twice = lead[lead.task_key.duplicated(keep=False)]
    # a task fitted in two groups (the family's and the main experiment's) is named with its steps per level
    names = {r.task: f"{r.task} ({r.steps} steps)" if r.task in set(twice.task) else r.task for r in lead.itertuples()}
    ax = plot.exponents({names[k]: v for k, v in lins.items()}, modes=1)  # the leading mode; all are in the table
    p.save(ax.figure, "exponents")
    p.count(n_groups_exp=len(lead), n_tasks_exp=int(lead.task_key.nunique()),
            n_relevant_tasks=int((lead.exponent_lo > 0).sum()))
    p.number(y_lead_range=f"{lead.exponent.min():+.2f} to {lead.exponent.max():+.2f}",
             exp_repeated="; ".join(
                 f"task {key} is fitted in {len(g)} groups, " + " and ".join(
                     f"{r.task} ({r.steps} steps per level)" for r in g.itertuples())
                 for key, g in twice.groupby("task_key", sort=False)) or "no task is fitted twice")


@step("spectra")
def make_spectra(p: Paper) -> None:
    from rgnet.universality import signatures

    groups = task_groups(p)
    files = {task: [Path(str(f)) for f in runs["path"].values] for task, runs in groups.items()}
    # trained weights (Redman et al.) where every file holds them, else the rewound tickets every file holds:
    # one observable for all tasks, so their spectra can be compared
    for name in ("dmd_micro", "dmd_ticket"):
        skipped: dict[str, str] = {}
        sigs = {task: signatures(f, names=[name], skipped=skipped).get(name) for task, f in files.items()}
        if not skipped:
            break
    else:
        raise Missing(f"no DMD spectrum could be computed: {next(iter(skipped.values()))}")
    sets, rows = {}, []
    for task, sig in sigs.items():
        lam = np.asarray(sig["eigenvalues"].values, complex)
        for r, row in enumerate(lam):
            rows += [{"task": task, "run": r, "mode": k, "observable": name, "re": v.real, "im": v.imag,
                      "abs": abs(v)} for k, v in enumerate(row) if np.isfinite(v)]
        sets[task] = lam[np.isfinite(lam)]
    what = {"dmd_micro": "trained weights", "dmd_ticket": "rewound tickets"}[name]
    with plot.style():
        fig, (ax, zoom) = plt.subplots(1, 2, figsize=(plot.PAGE, 3.9), layout="constrained")
    plot.spectrum(sets, ax=ax, title=f"DMD spectra: {what}, every run")
    plot.spectrum(sets, ax=zoom, title="the leading eigenvalues, enlarged")
    zoom.get_legend().remove()
    ax.xaxis.set_major_locator(matplotlib.ticker.MultipleLocator(0.5))  # labels of 0.25 steps collide at this size
    every = np.concatenate(list(sets.values()))
    lead = every[np.abs(every) >= 0.5 * np.abs(every).max()]  # the slow modes crowd near |λ| = 1
    half = 0.55 * max(np.ptp(lead.real), 2 * np.abs(lead.imag).max(), 0.05)
    centre = (lead.real.max() + lead.real.min()) / 2
    zoom.set_xlim(centre - half, centre + half)
    zoom.set_ylim(-half, half)
    p.save(fig, "dmd_spectra")
    df = p.table(pd.DataFrame(rows), "dmd_eigenvalues")
    ranks = df.groupby(["task", "run"]).size()
    p.number(dmd_observable=what, dmd_max_abs=f"{df['abs'].max():.3f}")
    p.count(dmd_outside=int((df["abs"] > 1).sum()), dmd_total=len(df), dmd_rank_min=int(ranks.min()),
            dmd_rank_max=int(ranks.max()), dmd_groups=len(sets))


@step("family_ladders")
def make_family_ladders(p: Paper) -> None:
    t = rgnet.winning_tickets(p.family_files, labels=p.family_labels)
    exps = [str(e) for e in t["experiment"].values]
    base = [a for a in ("imp", "reinit", "random_prune_layerwise", "random_prune_global") if a in t["arm"].values]
    ncol = 3 if len(exps) > 4 else len(exps)
    nrow = int(np.ceil(len(exps) / ncol))
    with plot.style():
        fig, axes = plt.subplots(nrow, ncol, figsize=(plot.PAGE, 2.2 * nrow), layout="constrained",
                                 squeeze=False, sharey=True)
    for ax, exp in zip(axes.flat, exps):
        arms = [a for a in base if int(t["seeds"].sel(experiment=exp, arm=a).max())]
        plot.ladder(t, experiment=exp, arms=arms, ax=ax)
        if ax is not axes.flat[0]:
            ax.get_legend().remove()
        ax.tick_params(labelleft=True)
    for ax in list(axes.flat)[len(exps):]:
        ax.set_visible(False)
    p.save(fig, "family_ladders")
    win = p.table(winning_table(t, "test_acc").query("arm in @base"), "family_winning")
    imp = win[win.arm == "imp"]
    p.count(n_family_tasks=len(exps))
    p.number(family_tasks=", ".join(exps),
             family_seeds=f"{imp.seeds.min()}" + (f"–{imp.seeds.max()}" if imp.seeds.max() > imp.seeds.min() else ""),
             family_win=", ".join(f"{e} {pct(d)} %" for e, d in zip(imp.experiment, imp.winning_density)))


def plain_sources(m: xr.Dataset) -> list[str]:
    return [str(s) for s in m["source"].values if "[" not in str(s)]


@step("transfer_matrix")
def make_transfer_matrix(p: Paper) -> None:
    m = p.matrix
    plain = plain_sources(m)
    mm = m.sel(source=plain)
    p.save(plot.transfer_matrix(mm).figure, "transfer_matrix")
    cell = lambda v, s, t: m[v].sel(source=s, target=t)  # noqa: E731
    rows = [{"source": s, "target": t, "gap_range": float(cell("gap_range", s, t)),
             "gap_range_low": float(cell("gap_range_ci", s, t)[0]),
             "gap_range_high": float(cell("gap_range_ci", s, t)[1]),
             "verdict": int(cell("transfer_verdict", s, t)),
             "gap_at_winning": float(cell("gap_at_winning", s, t)),
             "vs_random_at_winning": float(cell("vs_random_at_winning", s, t))}
            for s in m["source"].values for t in m["target"].values]
    df = p.table(pd.DataFrame(rows), "transfer_matrix")
    off = df[(df.source != df.target) & df.source.isin(plain) & (df.verdict > -2)]
    yes, no, gaps = off[off.verdict == 1], off[off.verdict == 0], off.dropna(subset=["gap_range"])
    p.table(pd.DataFrame([{"use": "transfer", "metric": m.attrs.get("metric", "test_acc"),
                           "rule": m.attrs.get("rule_name", ""), "text": m.attrs.get("rule", "")}]), "transfer_rule")
    p.count(n_pairs=len(off), n_transfer=len(yes), n_no_transfer=len(no), n_undecided=len(off) - len(yes) - len(no))
    p.number(transfer_pairs=", ".join(f"{s} → {t}" for s, t in zip(yes.source, yes.target)) or "none",
             worst_pair=(lambda r: f"{r.source} → {r.target} ({100 * r.gap_range:+.1f} points "
                                   f"[{100 * r.gap_range_low:+.1f}, {100 * r.gap_range_high:+.1f}])")(
                 gaps.loc[gaps.gap_range.idxmin()]) if len(gaps) else "n/a",
             transfer_metric=m.attrs.get("metric", "test_acc"), transfer_rule=m.attrs.get("rule", ""))


def universality_dataset(p: Paper) -> xr.Dataset:
    """The universality analysis of the family, from the cache when its inputs have not changed."""
    from rgnet.universality import universality

    if p.universality is not None:
        return p.universality
    files = p.family_files
    key = content_hash(files + ANALYSIS_CODE, {**UNIVERSALITY, "rgnet": RGNET_VERSION})
    path = p.tables / "universality.nc"
    if p.cache and path.is_file():
        cached = xr.open_dataset(path, engine="h5netcdf").load()
        cached.close()
        if cached.attrs.get("input_sha256") == key:
            print("  universality: cached (inputs unchanged)")
            p.universality = cached
            return cached
    try:
        matrix = p.matrix
    except Missing:
        matrix = None  # classes need no transfer; the scoring is then left out
    print("  universality: computing (the slow part; cached afterwards)", flush=True)
    ds = universality(files, transfer=matrix, labels=p.family_labels,
                      log=lambda line: print(f"  universality: {line}", flush=True), **UNIVERSALITY)
    ds.attrs["input_sha256"] = key
    tmp = path.with_suffix(".tmp")
    ds.to_netcdf(tmp, engine="h5netcdf", invalid_netcdf=True)
    tmp.replace(path)
    p.universality = ds
    return ds


def role(predictor: str, primary: str = PRIMARY) -> str:
    """``primary``, ``pre-registered baseline``, ``original primary`` (the phase family: the primary before
    Amendment 1) or ``exploratory`` (paper/preregistration.md)."""
    return ("primary" if predictor == primary else "pre-registered baseline" if predictor in PREREGISTERED_BASELINES
            else "original primary" if predictor == PRIMARY else "exploratory")


def score_table(ds: xr.Dataset, primary: str = PRIMARY) -> pd.DataFrame:
    """Every predictor's scores (the pre-registered score tau_w first): the primary, then the pre-registered
    baselines, then the exploratory predictors, each in the analysis's own order (never sorted by a result)."""
    df = pd.DataFrame({"predictor": [str(x) for x in ds["predictor"].values],
                       "kind": [str(x) for x in ds["predictor_kind"].values] if "predictor_kind" in ds else "",
                       "tau_w": ds["tau_w"].values,
                       "tau_lo": ds["tau_task_ci"].isel(bound=0).values,
                       "tau_hi": ds["tau_task_ci"].isel(bound=1).values,
                       "p_tau": ds["p_tau"].values, "p_tau_holm": ds["p_tau_holm"].values,
                       "beyond": ds["beyond"].values, "p_beyond_holm": ds["p_beyond_holm"].values,
                       "rho_gap": ds["rho_gap"].values, "auroc": ds["auroc"].values,
                       "auroc_lo": ds["auroc_task_ci"].isel(bound=0).values,
                       "auroc_hi": ds["auroc_task_ci"].isel(bound=1).values, "p_auroc": ds["p_auroc"].values,
                       "loto_balanced_accuracy": ds["loto_balanced_accuracy"].values})
    df.insert(1, "role", [role(x, primary) for x in df.predictor])
    order = {"primary": 0, "pre-registered baseline": 1, "original primary": 2, "exploratory": 3}
    return df.sort_values("role", key=lambda r: r.map(order), kind="stable")


def preregistered_table(ds: xr.Dataset, primary: str = PRIMARY) -> pd.DataFrame:
    """The pre-registered analysis: the primary and the pre-registered baselines, with p-values Holm-adjusted over
    these predictors only (the pre-registration's family), the decision at :data:`DECISION_LEVEL`, and how the
    signatures were paired with the measured transfer."""
    from rgnet.universality.scoring import holm

    names = [n for n in (primary, *PREREGISTERED_BASELINES) if n in list(ds["predictor"].values)]
    sub = ds.sel(predictor=names)
    df = pd.DataFrame({"predictor": names, "role": [role(n, primary) for n in names], "tau_w": sub["tau_w"].values,
                       "tau_lo": sub["tau_task_ci"].isel(bound=0).values,
                       "tau_hi": sub["tau_task_ci"].isel(bound=1).values, "p_tau": sub["p_tau"].values,
                       "p_tau_holm": holm(sub["p_tau"].values), "beyond": sub["beyond"].values,
                       "p_beyond": sub["p_beyond"].values, "p_beyond_holm": holm(sub["p_beyond"].values)})
    df["decision_level"] = DECISION_LEVEL
    df["predicts_transfer"] = df.p_tau_holm < DECISION_LEVEL
    seeds = ds.attrs.get("signature_seeds", "all")
    try:
        seeds = json.loads(seeds) if isinstance(seeds, str) else seeds
    except json.JSONDecodeError:
        pass
    df["signature_seeds"] = seeds if isinstance(seeds, str) else ", ".join(map(str, np.atleast_1d(seeds)))
    return df


@step("classes")
def make_classes(p: Paper) -> None:
    import networkx as nx

    from rgnet.universality import class_graph

    ds = universality_dataset(p)
    sigs = [str(s) for s in ds["signature"].values]
    # the graph of the pre-registered primary signature (never of one picked for its score)
    shown = PRIMARY if PRIMARY in sigs else sigs[0]
    p.table(pd.DataFrame([{"signature": s, "role": role(s), "task": str(t),
                           "class": int(ds["class_id"].sel(signature=s, task=t)), "alpha": float(ds.attrs["alpha"])}
                          for s in sigs for t in ds["task"].values]), "classes")
    test = ds.sel(signature=shown)
    g = class_graph(test, alpha=float(ds.attrs["alpha"]))
    nx.set_node_attributes(g, {str(t): int(test["class_id"].sel(task=t)) for t in ds["task"].values}, "class")
    ax = plot.class_graph(g, weight_attr="p_value")  # thicker: the harder to tell apart
    with plot.style():  # the title is made now, in the figures' font size
        what = " (the pre-registered primary)" if shown == PRIMARY else ""
        ax.set_title(f"universality classes: {shown}{what}\n"
                     f"edge: p > {ds.attrs['alpha']:g} (thicker: larger p)")
    p.save(ax.figure, "class_graph")
    ids = [int(c) for c in test["class_id"].values]
    p.count(n_classes=len(set(ids)), n_univ_tasks=int(ds.sizes["task"]))
    p.number(class_signature=f"{shown} ({role(shown)})", univ_alpha=f"{ds.attrs['alpha']:g}",
             univ_signatures=", ".join(sigs),
             class_members="; ".join(", ".join(str(t) for t, i in zip(test["task"].values, ids) if i == c)
                                     for c in sorted(set(ids))))


def and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@step("universality")
def make_universality(p: Paper) -> None:
    ds = universality_dataset(p)
    if "tau_w" not in ds:
        why = json.loads(ds.attrs.get("unavailable", "{}")).get("scoring", "no measured transfer to score against")
        raise Missing(f"the predictors were not scored: {why}")
    if PRIMARY not in list(ds["predictor"].values):
        raise Missing(f"the pre-registered primary signature {PRIMARY} was not scored")
    sigs = [str(s) for s in ds["signature"].values]
    table = p.table(score_table(ds), "universality_scores", digits=3)
    pre = p.table(preregistered_table(ds), "preregistered", digits=3)
    preds = list(table.predictor)

    # ROC: the RG signatures in one panel, the baselines in the other; pairs of different tasks only
    groups = {"RG signatures": [s for s in sigs if s in preds],
              "baselines": [x for x in preds if x not in sigs and "(class)" not in x]}
    lab = ds["transfers"]
    off = xr.DataArray(np.asarray(lab["source"].values)[:, None] != np.asarray(lab["target"].values)[None, :],
                       dims=("source", "target"), coords={"source": lab["source"], "target": lab["target"]})
    with plot.style():
        fig, axes = plt.subplots(1, 2, figsize=(plot.PAGE, 3.6), layout="constrained")
    for ax, (title, names) in zip(axes, groups.items()):
        plot.roc({n: ds["score"].sel(predictor=n).drop_vars("predictor").where(off) for n in names},
                 lab.where(off), ax=ax)
        with plot.style():
            ax.set_title(f"predicted vs measured transfer: {title}")
    p.save(fig, "roc")

    by, reg = table.set_index("predictor"), pre.set_index("predictor")

    def tau(name: str, holm_over: str = "all") -> str:
        r = reg.loc[name] if holm_over == "pre" else by.loc[name]
        return (f"τ_w = {r.tau_w:+.2f} [{r.tau_lo:+.2f}, {r.tau_hi:+.2f}] (Holm p = {r.p_tau_holm:.3f}; beyond "
                f"source and target effects r = {r.beyond:+.2f}, Holm p = {r.p_beyond_holm:.3f})")

    prim = reg.loc[PRIMARY]
    bases = pre[pre.role == "pre-registered baseline"]
    above = bases[bases.tau_w > prim.tau_w]  # the rule: a baseline with a higher tau_w beats the primary
    explore = table[(table.role == "exploratory") & table.kind.isin(["signature", "class"]) & table.tau_w.notna()]
    top_base = bases.tau_w.max() if len(bases) else np.nan
    beyond = [str(x) for x in table.predictor[table.p_beyond_holm < DECISION_LEVEL]]
    p.count(n_explore=len(explore), n_explore_above=int((explore.tau_w > top_base).sum()),
            n_explore_significant=int((explore.p_tau_holm < DECISION_LEVEL).sum()))
    covers = prim.tau_lo <= 0 <= prim.tau_hi
    p.number(primary_signature=PRIMARY, primary_score=tau(PRIMARY, "pre"), decision_level=f"{prim.decision_level:g}",
             primary_decision=(("passes" if prim.predicts_transfer else "fails")
                               + " the pre-registered test for predicting transfer"
                               + (", in sample" if prim.signature_seeds == "all" else "")
                               + f" (τ_w = {prim.tau_w:+.2f}, Holm-adjusted p = "
                               f"{prim.p_tau_holm:.3f} against {prim.decision_level:g}"
                               + (f"; its interval over resampled tasks, [{prim.tau_lo:+.2f}, {prim.tau_hi:+.2f}], "
                                  "includes 0)" if covers else ")")),
             primary_vs_baselines=(
                 ("but" if prim.predicts_transfer else "and") + " it loses to the pre-registered baseline"
                 + "s" * (len(above) > 1) + " "
                 + and_list([f"{r.predictor} (τ_w = {r.tau_w:+.2f})" for r in above.itertuples()])
                 if len(above) else "no pre-registered baseline has a higher τ_w")
             if len(bases) else "no pre-registered baseline was scored",
             baselines_scores="; ".join(f"{r.predictor} {tau(r.predictor, 'pre')}" for r in bases.itertuples()),
             mask_iou_score=tau("mask_iou", "pre") if "mask_iou" in reg.index else "n/a",
             additive_score=tau("additive", "pre") if "additive" in reg.index else "n/a",
             beyond_effects=", ".join(beyond) if beyond else "none",
             in_sample=("from the same seeds (in sample), not from disjoint halves of the seeds as the "
                        "pre-registration requires" if prim.signature_seeds == "all" else
                        f"from disjoint seeds (signatures from seeds {prim.signature_seeds}, the measured transfer "
                        "from the others), as the pre-registration requires"))


def phase_inputs(p: Paper) -> tuple[xr.Dataset, xr.Dataset, xr.Dataset]:
    folder = p.data / PHASE
    names = ("transfer", "universality", "runs")
    missing = [n for n in names if not (folder / f"{n}.nc").is_file()]
    if missing:
        raise Missing(f"{folder} lacks {', '.join(n + '.nc' for n in missing)} (python scripts/phase_derive.py)")
    return tuple(xr.open_dataset(folder / f"{n}.nc", engine="h5netcdf").load() for n in names)


VERDICT_NAMES = {1: "transfers", 0: "does not", -1: "undecided"}


def phase_pair_table(t: xr.Dataset, u: xr.Dataset) -> pd.DataFrame:
    """Every measured pair: its steps apart on the grid, its gap (all seeds, each half), verdicts, primary score."""
    cell = plot.phase.grid_cells(t)[0]
    rows = []
    for s in map(str, t.source.values):
        for g in map(str, t.target.values):
            x = t.sel(source=s, target=g)
            if s == g or not np.isfinite(float(x.gap_range)):
                continue
            steps = abs(cell[s][0] - cell[g][0]) + abs(cell[s][1] - cell[g][1])
            rows.append({"source": s, "target": g, "grid_distance": steps,
                         "kind": "neighbour" if steps == 1 else "distant", "gap_range": float(x.gap_range),
                         "gap_lo": float(x.gap_range_ci.isel(bound=0)), "gap_hi": float(x.gap_range_ci.isel(bound=1)),
                         "verdict": VERDICT_NAMES[int(x.transfer_verdict)],
                         "gap_signature_seeds": float(x.gap_range_half.isel(half=0)),
                         "gap_gap_seeds": float(x.gap_range_half.isel(half=1)),
                         "verdict_signature_seeds": VERDICT_NAMES[int(x.verdict_half.isel(half=0))],
                         "verdict_gap_seeds": VERDICT_NAMES[int(x.verdict_half.isel(half=1))],
                         f"score_{PHASE_PRIMARY}": float(u.score.sel(predictor=PHASE_PRIMARY, source=s, target=g))})
    return pd.DataFrame(rows)


def tau_text(r) -> str:
    """A row of :func:`preregistered_table` as ``τ_w = +x [lo, hi], Holm-adjusted p = p``."""
    return f"τ_w = {r.tau_w:+.2f} [{r.tau_lo:+.2f}, {r.tau_hi:+.2f}], Holm-adjusted p = {r.p_tau_holm:.3f}"


@step("phase")
def make_phase(p: Paper) -> None:
    from rgnet.universality.scoring import tau_difference

    t, u, runs = phase_inputs(p)
    if "tau_w" not in u or PHASE_PRIMARY not in list(u["predictor"].values):
        raise Missing(f"the phase family's analysis did not score {PHASE_PRIMARY}")
    classes = u.class_id.sel(signature=PHASE_PRIMARY) if PHASE_PRIMARY in list(u.signature.values) else None
    off = t.gap_seed.where(t.source != t.target)   # the diagonal (a task's own ticket) is 0 at every level
    levels = [int(lv) for lv in t.level.values if np.isfinite(off.sel(level=lv)).any()]
    fig = plot.phase_panels(t, levels, classes=classes)
    p.save(fig, "phase_field")
    ax = plot.phase_diagram(t, classes=classes)
    p.save(ax.figure, "phase_gap")
    gap_half = {"half": "gap seeds"}   # what the scores are scored against
    ax = plot.predicted_vs_measured(u, PHASE_PRIMARY, transfer=t.assign(
        gap_range=t.gap_range_half.sel(gap_half), gap_range_ci=t.gap_range_ci_half.sel(gap_half),
        transfer_verdict=t.verdict_half.sel(gap_half)))
    p.save(ax.figure, "phase_scatter")

    pairs = p.table(phase_pair_table(t, u), "phase_pairs", digits=3)
    table = p.table(score_table(u, PHASE_PRIMARY), "phase_scores", digits=3)
    ax = plot.score_intervals(u, list(table.predictor), roles=dict(zip(table.predictor, table.role)))
    p.save(ax.figure, "phase_scores")
    pre = p.table(preregistered_table(u, PHASE_PRIMARY), "phase_preregistered", digits=3)
    score = u.score.transpose("predictor", "source", "target")
    d, lo, hi = tau_difference(score.sel(predictor=PHASE_PRIMARY).values, score.sel(predictor=PHASE_VERSUS).values,
                               u.gap.transpose("source", "target").values)
    versus = p.table(pd.DataFrame([{"predictor": PHASE_PRIMARY, "versus": PHASE_VERSUS, "tau_w_difference": d,
                                    "lo": lo, "hi": hi, "better": bool(lo > 0), "worse": bool(hi < 0)}]),
                     "phase_versus", digits=3)

    dens = p.table(pd.DataFrame({"level": levels, "density": [float(t.density.isel(target=0).sel(level=lv))
                                                               for lv in levels]}), "phase_levels")
    ids = classes if classes is not None else xr.zeros_like(u.task, dtype=int)
    p.table(pd.DataFrame({"task": [str(x) for x in u.task.values], "class": [int(c) for c in ids.values],
                          "signature": PHASE_PRIMARY}), "phase_classes")
    rep = json.loads(t.attrs["replication"])
    halves = json.loads(t.attrs["halves"])
    counts = pairs.verdict.value_counts()
    p.table(pd.DataFrame([{"seeds": h, **{k: int((pairs[c] == k).sum()) for k in VERDICT_NAMES.values()}}
                          for h, c in (("all", "verdict"), ("signature seeds", "verdict_signature_seeds"),
                                       ("gap seeds", "verdict_gap_seeds"))]), "phase_verdicts")
    p.table(pd.DataFrame([rep]), "phase_replication", digits=3)
    p.count(phase_tasks=int(t.sizes["target"]), phase_seeds=int(runs.seed.to_series().nunique()),
            phase_pairs=len(pairs), phase_neighbour=int((pairs.kind == "neighbour").sum()),
            phase_distant=int((pairs.kind == "distant").sum()), phase_transfers=int(counts.get("transfers", 0)),
            phase_not=int(counts.get("does not", 0)), phase_undecided=int(counts.get("undecided", 0)),
            phase_both=int(rep["decided_both"]), phase_contradict=int(rep["contradictions"]),
            phase_levels=len(levels), phase_classes=len(set(int(c) for c in ids.values)))
    prim = pre.set_index("predictor").loc[PHASE_PRIMARY]
    base = pre.set_index("predictor").loc[PHASE_VERSUS]
    vs = versus.iloc[0]
    covers = prim.tau_lo <= 0 <= prim.tau_hi
    p.number(
        phase_densities=", ".join(f"{100 * d:.0f} %" for d in dens.density),
        phase_signature_seeds=seed_range(halves["signature seeds"]), phase_gap_seeds=seed_range(halves["gap seeds"]),
        phase_kappa=f"{rep['kappa']:.2f}", phase_gap_r=f"{rep['gap_pearson']:.2f}",
        phase_primary=PHASE_PRIMARY, phase_versus=PHASE_VERSUS,
        phase_primary_score=tau_text(prim), phase_versus_score=tau_text(base),
        phase_difference=f"{vs.tau_w_difference:+.2f} [{vs.lo:+.2f}, {vs.hi:+.2f}]",
        phase_gap_min=f"{100 * pairs.gap_range.min():+.1f}", phase_gap_max=f"{100 * pairs.gap_range.max():+.1f}",
        phase_decision=("predicts" if prim.predicts_transfer else "does not predict")
        + f" which tickets transfer (pre-registered test at {DECISION_LEVEL:g}"
        + ("; its interval over resampled tasks includes 0)" if covers else ")"),
        phase_versus_decision="beats" if vs.better else "loses to" if vs.worse else "does not beat",
        phase_versus_order="lower" if vs.tau_w_difference > 0 else "higher",
    )


@step("aligned")
def make_aligned(p: Paper) -> None:
    from rgnet.plot.transfer import aligned_pairs

    m = p.matrix
    pairs = aligned_pairs(m)
    if not pairs:
        raise Missing(f"the runs in {p.data / FAMILY} hold no aligned transfer (rgnet transfer --align)")
    p.save(plot.aligned_transfer(m), "aligned_transfer")
    rows = []
    for (source, target), modes in pairs.items():
        for mode, label in modes.items():
            sel = {"source": label, "target": target}
            gap = m["gap"].sel(sel)
            for lv in gap["level"].values[np.isfinite(gap.values)]:
                rows.append({"source": source, "target": target, "align": mode, "level": int(lv),
                             "density": float(m["density"].sel(target=target, level=lv)),
                             "gap": float(gap.sel(level=lv)), "gap_std": float(m["gap_std"].sel(sel).sel(level=lv)),
                             "matching": bool(m["transfer_matching"].sel(sel).sel(level=lv))})
    df = p.table(pd.DataFrame(rows), "aligned_transfer")
    summary = p.table(df.assign(aligned=np.where(df["align"] == "none", "unaligned", "aligned"))
                      .groupby("aligned", sort=False)
                      .agg(gap_mean=("gap", "mean"), matching_share=("matching", "mean"), levels=("gap", "size"))
                      .reset_index(), "aligned_transfer_summary").set_index("aligned")
    none = summary.loc["unaligned"] if "unaligned" in summary.index else None
    aligned = summary.loc["aligned"]
    p.number(aligned_pairs=", ".join(f"{s} → {t}" for s, t in pairs),
             aligned_gap_none=f"{100 * none.gap_mean:+.1f}" if none is not None else "n/a",
             aligned_gap_inputs=f"{100 * aligned.gap_mean:+.1f}",
             aligned_matching=f"{aligned.matching_share:.0%}",
             unaligned_matching=f"{none.matching_share:.0%}" if none is not None else "n/a")


@step("ising")
def make_ising(p: Paper) -> None:
    from rgnet.plot.ising import mk_exact, mk_recovered

    traj = rg.migdal_kadanoff_2d(rg.toy.MK_FIXED_POINT + np.linspace(-0.03, 0.03, 9), levels=6)
    lin = linearise(traj, model="quadratic", window=0.02)
    p.save(plot.ising_validation(traj, lin), "ising_validation")
    exact, found = mk_exact(), mk_recovered(lin)
    df = p.table(pd.DataFrame([{"quantity": k, "recovered": found[k][0], "lower": found[k][1], "upper": found[k][2],
                                "exact": exact[k], "relative_error": found[k][0] / exact[k] - 1,
                                "abs_relative_error": abs(found[k][0] / exact[k] - 1)} for k in exact]),
                 "ising_validation", digits=7)
    d = df.set_index("quantity")
    p.number(**{f"ising_{k}": f"{d.loc[q, 'recovered']:.6f}" for k, q in (("k", "K*"), ("lam", "λ"), ("y", "y"))},
             **{f"ising_{k}_exact": f"{d.loc[q, 'exact']:.6f}" for k, q in (("k", "K*"), ("lam", "λ"), ("y", "y"))},
             ising_max_err=f"{df.abs_relative_error.max():.1e}")


@step("protocol")
def make_protocol(p: Paper) -> None:
    path = p.data / PROTOCOL
    if not path.is_file():
        raise Missing(f"{path} does not exist")
    ds = xr.open_dataset(path, engine="h5netcdf").load()
    p.save(plot.stopping_rules(ds), "early_stopping_protocol")
    rows = []
    for model in ds["model"].values:
        for crit in ds["criterion"].values:
            for iv in ds["interval"].values:
                s = ds.sel(model=model, criterion=crit, interval=iv)
                lost = s["best"] - s["picked"]
                rows.append({"model": str(model), "criterion": str(crit), "interval": int(iv),
                             "levels": int(np.isfinite(s["picked"]).any("seed").sum()),
                             "loss_mean": float(lost.mean()), "loss_max_level_mean": float(lost.mean("seed").max()),
                             "stop_iteration_dense": float(s["stop_iteration"].sel(level=0).mean()),
                             "final_loss_mean": float((s["best"] - s["final"]).mean())})
    df = p.table(pd.DataFrame(rows), "early_stopping_protocol")
    every = 100 if (df.interval == 100).any() else int(df.interval.min())  # evaluations every 100 steps
    d = df[df.interval == every].set_index(["model", "criterion"])
    p.count(proto_seeds=int(ds.sizes["seed"]))
    p.number(proto_every=every, proto_models=", ".join(map(str, ds["model"].values)),
             **{f"proto_{m}_{c}": pct(d.loc[(m, c), "loss_mean"], 1) for m, c in d.index},
             **{f"proto_{m}_{c}_worst": pct(d.loc[(m, c), "loss_max_level_mean"], 1) for m, c in d.index},
             **{f"proto_{m}_{c}_stop": f"{d.loc[(m, c), 'stop_iteration_dense']:.0f}" for m, c in d.index})


# ---- the text ---------------------------------------------------------------------------------------------

#: A number in running text: not part of a word or a longer number (``fc1``, ``0.1.0`` are not numbers).
NUMBER = re.compile(r"(?<![\w.])[-+−]?(?P<int>\d+)(?:\.(?P<frac>\d+))?(?:e(?P<exp>[-+]?\d+))?(?![\w.]*\d)")


def numbers_in(text: str) -> list[tuple[str, float, float]]:
    """``(token, value, half a unit in its last digit)`` for every number in ``text``."""
    out = []
    for m in NUMBER.finditer(text):
        value = float(m.group(0).replace("−", "-"))
        last = -len(m["frac"] or "") + int(m["exp"] or 0)
        out.append((m.group(0), value, 0.5 * 10.0 ** last))
    return out


def table_values(paths: list[Path]) -> np.ndarray:
    """Every number in the tables: numeric cells, and numbers written inside text cells (``rewind_180``,
    ``2->3``, a rule's margin)."""
    values = []
    for path in paths:
        df = pd.read_csv(path)
        for col in df.columns:
            c = df[col]
            if pd.api.types.is_bool_dtype(c):
                continue
            if pd.api.types.is_numeric_dtype(c):
                values.append(c.to_numpy(float))
            else:
                text = " ".join(c.dropna().astype(str)).replace("_", " ").replace("->", " ")
                values.append(np.array([v for _, v, _ in numbers_in(text)], float))
    every = np.concatenate(values) if values else np.zeros(0)
    return np.unique(every[np.isfinite(every)])


def untraceable(p: Paper) -> dict[str, list[str]]:
    """The numbers of the text that no table written in this run holds (as a value, or as a percentage of one,
    to the digits shown). Counts of table rows (:meth:`Paper.count`) and :data:`NOT_RESULTS` are not checked."""
    values = table_values([p.out / m for m in p.made if m.endswith(".csv")])
    out = {}
    for key, text in p.numbers.items():
        if key in p.counts or key in NOT_RESULTS:
            continue
        bad = [tok for tok, v, half in numbers_in(text)
               if not (np.abs(values - v) <= half * (1 + 1e-9) + 1e-12).any()
               and not (np.abs(100 * values - v) <= half * (1 + 1e-9) + 1e-12).any()]
        if bad:
            out[key] = bad
    return out


SECTION = re.compile(r"<!-- begin (?P<name>\w+) -->\n(?P<body>.*?)<!-- end (?P=name) -->\n", re.S)


def write_paper(p: Paper, template: Path = TEMPLATE) -> Path:
    """Fill the template: sections whose steps were left out become one line saying why; every ``{name}`` must
    be a number made by a step, so the text never holds a number the tables do not."""
    template_text, parts, end = template.read_text(), [], 0
    for m in SECTION.finditer(template_text):
        parts.append(template_text[end:m.start()].format_map(p.numbers))
        reason = p.sections.get(m["name"], "its step was not run")
        parts.append(m["body"].format_map(p.numbers) if reason is None else f"*This part is left out: {reason}.*\n")
        end = m.end()
    text = "".join(parts) + template_text[end:].format_map(p.numbers)
    left = "\n".join(f"- {n}" for n in p.notes) or "- nothing"
    text = text.replace("<!-- left out -->", left)
    out = p.out / "paper.md"
    out.write_text(text)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data", help="data directory (default: data/)")
    ap.add_argument("--out", type=Path, default=ROOT / "paper", help="output directory (default: paper/)")
    ap.add_argument("--only", nargs="+", choices=list(STEPS), help="run only these steps (paper.md notes the rest)")
    ap.add_argument("--no-cache", action="store_true", help="recompute the universality analysis")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"make.py: the data directory {args.data} does not exist; pass --data DIR", file=sys.stderr)
        return 2
    start = time.perf_counter()
    p = Paper(args.data, args.out, cache=not args.no_cache, clear=not args.only)
    for i, (name, fn) in enumerate(STEPS.items(), 1):
        if args.only and name not in args.only:
            p.sections[name] = "not run (--only)"
            continue
        head = f"[{i:2d}/{len(STEPS)}] {name:16s}"
        print(f"{head} started", flush=True)
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # nan-means over absent levels
                fn(p)
        except (Missing, DataError, StoreError, ConfigError) as err:
            reason = str(err).rstrip(".")
            p.notes.append(f"{name}: {reason}")
            p.sections[name] = reason
            print(f"{head} left out: {reason} ({time.perf_counter() - t0:.1f} s)", flush=True)
            plt.close("all")
            continue
        p.sections[name] = None
        print(f"{head} done in {time.perf_counter() - t0:.1f} s", flush=True)
    p.number(data_dir=args.data.name + "/", rgnet_version=RGNET_VERSION)
    paper = write_paper(p)
    wall = time.perf_counter() - start
    print(f"wrote {len(p.made)} figures and tables under {args.out} and {paper} in {wall:.1f} s")
    missing = untraceable(p)
    if missing:
        print("make.py: numbers in paper.md that no table holds: "
              + "; ".join(f"{k}: {', '.join(v)}" for k, v in missing.items()), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
