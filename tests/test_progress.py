"""Progress in logs: when stderr is not a terminal, training writes a line per committed level (and within a level
one every PACE seconds) and the universality analysis a line per stage, each with the time elapsed; --quiet writes
nothing, and on a terminal training keeps its tqdm bar."""

import contextlib
import io
import json
import re
import warnings

import numpy as np
import pytest
import xarray as xr
from conftest import small_config

import rgnet
import rgnet.imp.driver as driver
import rgnet.progress
from rgnet.cli import main
from rgnet.progress import duration, left
from rgnet.rg._synthetic import synthetic_run
from rgnet.tasks import task_label
from rgnet.universality import universality

# the small config of conftest as flags, on a small teacher task (made in no time); --seeds 0-1 records two runs
# stacked (4 levels each)
FLAGS = ["--task", "teacher", "--task-param", "n_train=500", "--widths", "32,32", "--steps", "60", "--eval-every",
         "20", "--batch-size", "50", "--lr", "3e-3", "--levels", "3", "--fraction", "0.3", "--seeds", "0-1"]
COMMITTED = re.compile(r"^\[\d+ s\] (?P<file>\S+): level (?P<level>\d+) committed \(density [\d.]+, "
                       r"val_acc [\d.]+, test_acc [\d.]+\); (?P<k>\d+) of 8 levels, (~\d+ s|\?) left$")
STAGE = re.compile(r"^\[\d+ s\] \S")


def _cli(argv: list[str]) -> str:
    """Run the CLI with stderr captured in a StringIO (not a terminal, as a log is); returns stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 0
    return err.getvalue()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """2 tasks x 2 seeds recorded through the CLI, logged and --quiet: (run files, the two stderrs)."""
    d = tmp_path_factory.mktemp("progress")
    logged = _cli(["record", *FLAGS, "--out", str(d / "a-s{seed}.h5")])
    quiet = _cli(["record", *FLAGS, "--task-param", "seed=1", "--out", str(d / "b-s{seed}.h5"), "--quiet"])
    return sorted(str(p) for p in d.glob("*.h5")), logged, quiet


def test_record_in_a_log_writes_a_line_per_committed_level(recorded):
    _, logged, _ = recorded
    lines = logged.splitlines()
    assert lines[0] == "[0 s] training 8 levels (480 iterations)"
    committed = [COMMITTED.match(line) for line in lines[1:]]
    assert all(committed), lines  # nothing else at this pace: a level takes far less than PACE seconds
    assert [m["k"] for m in committed] == [str(k) for k in range(1, 9)]
    for file in {m["file"] for m in committed}:  # each run: levels 0-3, in order
        assert [m["level"] for m in committed if m["file"] == file] == ["0", "1", "2", "3"]


def test_quiet_record_writes_nothing(recorded):
    paths, _, quiet = recorded
    assert quiet == "" and len(paths) == 4


@pytest.mark.parametrize("progress, terminal, shown", [(None, False, "lines"), (None, True, "bar"),
                                                        (True, False, "bar"), (False, False, "nothing")])
def test_lines_in_a_log_bar_on_a_terminal(progress, terminal, shown, tmp_path, monkeypatch, capsys):
    """``progress=None`` picks lines or the bar by the terminal; True is always the bar, False nothing. With
    PACE = 0 a line comes at every evaluation, with the step and the time left in the level and in all."""
    monkeypatch.setattr(rgnet.progress, "PACE", 0.0)
    monkeypatch.setattr(driver, "on_terminal", lambda: terminal)
    cfg = small_config(task={"name": "teacher", "params": {"n_train": 500}}, prune={"levels": 1},
                       train={"steps": 20, "eval_every": 10})
    rgnet.record(cfg, tmp_path / "r.h5", progress=progress)
    err = capsys.readouterr().err
    within = [line for line in err.splitlines() if " in the level, " in line]
    if shown == "lines":
        assert all(STAGE.match(line) for line in err.splitlines())
        assert err.splitlines()[0].endswith("] training 2 levels (40 iterations)")
        assert "] level 0: step 10 of 20, " in within[1]
        assert all(re.search(r"(~\d+ s|\?) left in it, (~\d+ s|\?) left in all$", w) for w in within)
        assert err.count(" committed (") == 2 and "it/s" not in err
    elif shown == "bar":
        assert "it/s" in err and "committed" not in err and "in the level" not in err
    else:
        assert err == ""


def test_durations_and_estimates():
    assert [duration(s) for s in (0.4, 42, 185, 7620)] == ["0 s", "42 s", "3 min 05 s", "2 h 07 min"]
    assert left(0, 10, 5.0) == "?" and left(1, 4, 10.0) == "~30 s" and left(5, 4, 10.0) == "~0 s"


def _synthetic_family():
    """3 tasks x 2 seeds of in-memory runs and a transfer matrix: every stage but the baselines (which need files)."""
    runs = []
    for task, decay in (("a", 0.9), ("b", 0.7), ("c", 0.5)):
        for s in range(2):
            ds = synthetic_run(levels=6, decay=decay, seed=s, sizes=(200, 100, 50))
            cfg = json.loads(ds.attrs["config"])
            cfg["task"]["params"] = {"kind": task}
            runs.append(ds.assign_attrs(config=json.dumps(cfg), run_id=f"{task}{s}"))
    keys = [task_label(json.loads(r.attrs["config"])) for r in runs[::2]]
    matrix = xr.Dataset({"transfers": (("source", "target"), np.eye(3)),
                         "gap_at_winning": (("source", "target"), np.full((3, 3), -0.01))},
                        coords={"source": keys, "target": keys})
    return runs, matrix


def test_universality_reports_each_stage_with_the_time(monkeypatch):
    monkeypatch.setattr(rgnet.progress, "PACE", 0.0)  # every paced line: the runs and bootstraps one by one
    runs, matrix = _synthetic_family()
    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns of a constant score; not what this test is about
        universality(runs, transfer=matrix, names=["dmd_coarse", "fingerprint"], n_boot=2, n_perm=99,
                     baselines=False, log=lines.append)
    assert all(STAGE.match(line) for line in lines), lines
    text = [line.split("] ", 1)[1] for line in lines]
    expected = ["loading run 6 of 6", "loaded 6 runs of 3 tasks", "signature dmd_coarse (1 of 2) of 6 runs",
                "signature dmd_coarse: run 6 of 6", "signature fingerprint (2 of 2) of 6 runs",
                "classes by dmd_coarse (1 of 2): distances between 6 runs",
                "classes by dmd_coarse: same-class tests of 3 tasks", "classes by dmd_coarse: 2 seed bootstraps",
                "classes by dmd_coarse: bootstrap 2 of 2", "classes by fingerprint (2 of 2): distances between 6 runs",
                "scoring dmd_coarse (1 of 4)", "scoring fingerprint (class) (4 of 4)", "universality done"]
    assert [t for t in text if t in expected] == expected  # all there, in this order


def test_universality_cli_lines_and_quiet(recorded):
    paths = recorded[0]
    args = ["universality", *paths, "--signature", "dmd_coarse", "--n-boot", "2"]
    logged = _cli(args).splitlines()
    assert logged[0].endswith("] loaded 4 runs of 2 tasks") and logged[-1].endswith("] universality done")
    assert all(STAGE.match(line) for line in logged), logged
    assert _cli([*args, "--quiet"]) == ""


def test_a_sweep_in_a_log_writes_a_line_per_finished_unit(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[train]\nsteps = 40\neval_every = 20\n[prune]\nlevels = 2\n[model]\nname = "mlp"\n'
                    'params = { widths = [16] }\n[sweep]\nseeds = [0]\n[tasks.a]\nname = "teacher"\n'
                    'params = { n_train = 300 }\n[tasks.b]\nname = "teacher"\nparams = { n_train = 300, seed = 3 }\n'
                    '[transfers]\nlevels = [1]\n')
    err = _cli(["sweep", str(spec), "--dir", str(tmp_path / "out"), "--sequential"])
    lines = [x for x in err.splitlines() if x.startswith("sweep: ") and "levels, units" in x]
    assert [re.search(r"units (\d)/4", x).group(1) for x in lines] == ["0", "1", "2", "3", "4"]
    assert all(re.search(r"elapsed, (~\S+ \S+|\?) left$", x) for x in lines)
