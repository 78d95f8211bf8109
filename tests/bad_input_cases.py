"""Bad inputs a new user tries, and what rgnet must answer: shared by tests/test_bad_input.py and
scripts/bad_input_table.py (which prints the table for a closing note).

Each case is ``(id, argv, exit code, words of the message)``. ``argv`` may name the files made by
:func:`make_files` as ``{run}``, ``{one_level}``, ``{other_run}``, ``{sparse}``, ``{zero}``, ``{damaged}``,
``{notes}``, ``{eval20}`` and the TOML files as ``{toml:<name>}``. Every pre-existing file must be unchanged
afterwards and, for a refusal, no file may appear.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

SMALL = ["--widths", "16", "--steps", "40", "--eval-every", "20", "--batch-size", "50", "--levels", "2", "--quiet"]

TOML = {
    "steps": '[train]\nsteps = "abc"\n',
    "seed": 'seed = "x"\n',
    "lr": '[train]\nlr = "0.01"\n',
    "milestones": "[train]\nmilestones = 5\n",
    "widths": '[model.params]\nwidths = "abc"\n',
    "levels": "[prune]\nlevels = 2.5\n",
    "tensors": '[store]\ntensors = "no"\n',
    "section": "[trian]\nsteps = 5\n",
    "syntax": "[train\n",
    "huge_sweep": '[sweep]\nseeds = "0-1000000000"\n',
    "wide_sweep": '[sweep]\nseeds = "0-999"\n[grid]\n"train.lr" = [0.1, 0.01, 0.001, 0.0001, 0.00001, 0.2, 0.3, 0.4, '
                  '0.5, 0.6, 0.7]\n',
}

CASES = [
    # wrongly typed TOML values
    *[(f"toml-{k}", ["record", "--config", f"{{toml:{k}}}", "--quiet"], 2, words) for k, words in [
        ("steps", "train.steps must be an integer"), ("seed", "seed must be an integer"),
        ("lr", "without quotes"), ("milestones", "train.milestones must be a list"),
        ("widths", "model parameter widths must be a list"), ("levels", "prune.levels must be an integer"),
        ("tensors", "store.tensors must be true or false"), ("section", "unknown config section"),
        ("syntax", "not valid TOML")]],
    # task parameters
    ("task-param-seed", ["record", "--task-param", "seed=abc", *SMALL], 2, "task parameter seed must be an integer"),
    ("task-param-float", ["record", "--task-param", "num_samples=1500.5", *SMALL], 2,
     "task parameter num_samples must be an integer"),
    ("task-param-json", ["record", "--task-param", "padding=[36,", *SMALL], 2, "task parameter padding must be a list"),
    ("task-param-bool", ["record", "--task-param", "shuffle_seq=yes", *SMALL], 2, "must be true or false"),
    ("task-param-range", ["record", "--task-param", "train_split=1.5", *SMALL], 2, "out of range"),
    ("teacher-classes", ["record", "--task", "teacher", "--task-param", "classes=0", *SMALL], 2, "classes=0"),
    ("teacher-width", ["record", "--task", "teacher", "--task-param", "width=-3", *SMALL], 2, "width=-3"),
    # flags
    ("threads-0", ["record", "--threads", "0", *SMALL], 2, "--threads must be a positive integer"),
    ("widths-0", ["record", *SMALL, "--widths", "0"], 2, "sizes >= 1"),
    ("lr-inf", ["record", *SMALL, "--lr", "inf"], 2, "train.lr must be a finite number"),
    ("lr-nan", ["record", *SMALL, "--lr", "nan"], 2, "train.lr must be a finite number"),
    ("lr-negative", ["record", *SMALL, "--lr", "-1"], 2, "finite positive"),
    ("batch-too-big", ["record", *SMALL, "--batch-size", "100000"], 2, "larger than the training set"),
    ("seed-negative", ["record", *SMALL, "--seed", "-1"], 2, "seed must be >= 0"),
    ("tolerance-nan", ["tickets", "{run}", "--rule", "one_dense_std", "--tolerance", "nan"], 2,
     "--tolerance must be a finite number >= 0"),
    ("tolerance-negative", ["tickets", "{run}", "--rule", "one_dense_std", "--tolerance", "-0.1"], 2,
     "--tolerance must be"),
    ("tolerance-other-rule", ["tickets", "{run}", "--tolerance", "0.02"], 2,
     "rule 'noninferior' takes no parameter tolerance (--tolerance); it takes margin (--margin), alpha (--alpha)"),
    ("margin-negative", ["tickets", "{run}", "--margin", "-0.02"], 2, "the margin (--margin) must be a finite"),
    ("alpha-one", ["tickets", "{run}", "--alpha", "1"], 2, "alpha (--alpha) must be a level between 0 and 0.5"),
    # files with no complete level, damaged metadata
    ("tickets-no-level", ["tickets", "{zero}"], 2, "has no complete level yet"),
    ("flow-no-level", ["flow", "{zero}"], 2, "has no complete level yet"),
    ("baselines-no-level", ["baselines", "{zero}", "--quiet"], 2, "no complete level yet"),
    ("info-damaged", ["info", "{damaged}"], 2, "damaged metadata"),
    ("record-damaged", ["record", *SMALL, "--out", "{damaged}"], 2, "damaged metadata"),
    ("tickets-damaged", ["tickets", "{damaged}"], 2, "damaged metadata"),
    # --out never loses a file
    ("tickets-out-input", ["tickets", "{run}", "--out", "{run}", "--overwrite"], 2, "one of the command's input"),
    ("tickets-out-run-file", ["tickets", "{run}", "--out", "{other_run}", "--overwrite"], 2,
     "never writes there"),
    ("tickets-out-exists", ["tickets", "{run}", "--out", "{notes}"], 2, "already exists"),
    ("flow-out-input", ["flow", "{run}", "--out", "{run}"], 2, "one of the command's input"),
    ("flow-out-run-file", ["flow", "{run}", "--out", "{other_run}", "--overwrite"], 2, "never writes there"),
    ("ticket-out-run-file", ["ticket", "{run}", "--level", "1", "--out", "{other_run}"], 2, "never writes there"),
    # branches that cannot be trained write nothing
    ("baselines-level-missing", ["baselines", "{run}", "--levels", "7", "--quiet"], 2, "not complete"),
    ("baselines-nothing-to-train", ["baselines", "{one_level}", "--quiet"], 2, "nothing to train"),
    ("baselines-kind", ["baselines", "{run}", "--kinds", "reinit,magic", "--quiet"], 2, "valid baselines are"),
    ("transfer-density", ["transfer", "{sparse}", "--target", "{run}", "--quiet"], 2, "has density"),
    ("transfer-output-layer", ["transfer", "{run}", "--target", "{other_run}", "--output-layer", "huge",
                               "--quiet"], 2, "--output-layer must be one of"),
    # --out never writes into a run: tensor files, locks, sweep indexes, damaged run files, other outputs
    ("tickets-out-tensor-file", ["tickets", "{run}", "--out", "{run}.tensors/level_001.nc", "--overwrite"], 2,
     "inside a run's tensor folder"),
    ("tickets-out-new-tensor-file", ["tickets", "{run}", "--out", "{run}.tensors/level_009.nc"], 2,
     "inside a run's tensor folder"),
    ("flow-out-init", ["flow", "{run}", "--out", "{run}.tensors/init.nc", "--overwrite"], 2,
     "inside a run's tensor folder"),
    ("universality-out-init", ["universality", "{run}", "{other_run}", "--out", "{other_run}.tensors/init.nc",
                               "--overwrite"], 2, "inside a run's tensor folder"),
    ("universality-no-bootstraps", ["universality", "{run}", "{other_run}", "--n-boot", "0"], 2,
     "--n-boot) must be a whole number of seed bootstraps, 1 or more"),
    ("tickets-rule", ["tickets", "{run}", "--rule", "best"], 2, "unknown verdict rule 'best'"),
    ("tickets-out-lock", ["tickets", "{run}", "--out", "{run}.lock", "--overwrite"], 2, "a run's lock"),
    ("tickets-out-index", ["tickets", "{run}", "--out", "{index}", "--overwrite"], 2, "a sweep's index"),
    ("tickets-out-damaged-run", ["tickets", "{run}", "--out", "{headless}", "--overwrite"], 2,
     "its tensor folder or lock is beside it"),
    ("tickets-out-damaged-file", ["tickets", "{run}", "--out", "{headless_alone}", "--overwrite"], 2,
     "not a file that `rgnet tickets --out` wrote"),
    ("tickets-out-flow-output", ["tickets", "{run}", "--out", "{flow_out}", "--overwrite"], 2,
     "not a file that `rgnet tickets --out` wrote"),
    ("ticket-out-tensor-folder", ["ticket", "{run}", "--level", "1", "--out", "{run}.tensors/t.h5"], 2,
     "inside a run's tensor folder"),
    ("record-out-tensor-folder", ["record", *SMALL, "--out", "{run}.tensors/new.h5"], 2,
     "inside a run's tensor folder"),
    ("record-out-lock", ["record", *SMALL, "--out", "{run}.lock"], 2, "a run's lock"),
    # levels that are not the level they claim, metadata that does not fit the plan
    ("ticket-swapped-level", ["ticket", "{swapped}", "--level", "2", "--out", "t.h5"], 3, "not of / level 2"),
    ("baselines-swapped-level", ["baselines", "{swapped}", "--levels", "2", "--quiet"], 3, "not of / level 2"),
    ("ticket-foreign-init", ["ticket", "{foreign}", "--level", "1", "--out", "t.h5"], 3, "belongs to run"),
    ("info-levels-complete", ["info", "{too_many}"], 2, "damaged metadata"),
    ("tickets-levels-complete", ["tickets", "{too_many}"], 2, "damaged metadata"),
    ("record-levels-complete", ["record", *SMALL, "--out", "{too_many}"], 2, "damaged metadata"),
    ("info-check-levels-complete", ["info", "--check", "{too_many}"], 2, "damaged metadata"),
    # limits: stored integer types, memory, seeds, levels, sweep sizes
    ("steps-int32", ["record", *SMALL, "--steps", "3000000000"], 2, "2**31"),
    ("task-param-int32", ["record", *SMALL, "--task-param", "seed=3000000000"], 2, "2**31"),
    ("widths-memory", ["record", *SMALL, "--widths", "10000000"], 2, "GiB"),
    ("seeds-limit", ["record", *SMALL, "--seeds", "0-100000000"], 2, "more than 10,000"),
    ("levels-reach", ["record", *SMALL, "--levels", "1000000"], 2, "prunes below one weight"),
    ("sweep-huge-seeds", ["sweep", "{toml:huge_sweep}", "--dir", "sw", "--dry-run"], 2, "more than 10,000"),
    ("sweep-huge-grid", ["sweep", "{toml:wide_sweep}", "--dir", "sw", "--dry-run"], 2, "the sweep has 11,000 runs"),
    ("transfer-onto-itself", ["transfer", "{run}", "--target", "{run}", "--quiet"], 2, "the target run itself"),
    # analysis over runs evaluated on different grids works (curves are not part of the flow)
    ("flow-eval-grids", ["flow", "{run}", "{eval20}"], 0, ""),
]


def make_files(root: Path) -> dict[str, Path]:
    """Record the small runs the cases refer to (a few seconds) and write the broken and TOML files."""
    import h5py

    import rgnet
    from rgnet.config import ModelConfig, PruneConfig, RunConfig, TrainConfig

    def cfg(**prune):
        return RunConfig(model=ModelConfig("mlp", {"widths": [16]}), train=TrainConfig(steps=40, eval_every=20,
                         batch_size=50), prune=PruneConfig(**{"levels": 2, **prune}))

    files = {"run": rgnet.record(cfg(), root / "run.h5", progress=False),
             "other_run": rgnet.record(cfg().replace(seed=1), root / "other_run.h5", progress=False),
             "one_level": rgnet.record(cfg(levels=0), root / "one_level.h5", progress=False),
             "sparse": rgnet.record(cfg(fraction=0.6), root / "sparse.h5", progress=False),
             "eval20": rgnet.record(cfg().replace(train={"eval_every": 10}), root / "eval20.h5", progress=False)}
    for name, key, value in (("zero", "levels_complete", 0), ("damaged", "config", "{broken")):
        files[name] = root / f"{name}.h5"
        shutil.copy(files["run"], files[name])
        with h5py.File(files[name], "a") as f:
            f.attrs[key] = value
    damaged_copies(files, root)
    files["notes"] = root / "notes.nc"
    files["notes"].write_text("my notes")
    for name, text in TOML.items():
        files[f"toml:{name}"] = root / f"bad-{name}.toml"
        files[f"toml:{name}"].write_text(text)
    return files


def damaged_copies(files: dict[str, Path], root: Path) -> None:
    """Copies of ``run`` damaged as a user or a failing disk might: a swapped level file, another run's
    ``init.nc``, more complete levels than planned, a zeroed header; a sweep index and a flow output."""
    import h5py

    from rgnet.cli import main

    def copy(name: str) -> Path:
        files[name] = root / f"{name}.h5"
        shutil.copy(files["run"], files[name])
        shutil.copytree(Path(f"{files['run']}.tensors"), Path(f"{files[name]}.tensors"))
        return files[name]

    swapped = Path(f"{copy('swapped')}.tensors")
    shutil.copy(swapped / "level_001.nc", swapped / "level_002.nc")
    shutil.copy(Path(f"{files['other_run']}.tensors") / "init.nc", Path(f"{copy('foreign')}.tensors") / "init.nc")
    with h5py.File(copy("too_many"), "a") as f:
        f.attrs["levels_complete"] = 7
    for name in ("headless", "headless_alone"):
        data = bytearray((copy(name)).read_bytes())
        data[:8] = bytes(8)  # the HDF5 signature: h5py no longer opens it
        files[name].write_bytes(bytes(data))
    shutil.rmtree(Path(f"{files['headless_alone']}.tensors"))
    files["index"] = root / "index.nc"
    with h5py.File(files["index"], "w") as f:
        f.attrs["rgnet_sweep_index"] = 1
    files["flow_out"] = root / "flow.nc"
    with contextlib.redirect_stdout(io.StringIO()):  # the flow table is not part of a case
        assert main(["flow", str(files["run"]), "--out", str(files["flow_out"])]) == 0


def expand(argv: list[str], files: dict[str, Path]) -> list[str]:
    out = []
    for a in argv:
        for key, path in files.items():
            a = a.replace("{" + key + "}", str(path))
        out.append(a)
    return out
