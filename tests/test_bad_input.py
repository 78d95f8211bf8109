"""Every class of bad input: one sentence, exit code 2, every pre-existing file unchanged, nothing new written.

The cases live in tests/bad_input_cases.py (scripts/bad_input_table.py prints them as a table).
"""

import hashlib
import subprocess
import sys

import h5py
import numpy as np
import pytest
import xarray as xr
from bad_input_cases import CASES, expand, make_files

import rgnet
from rgnet.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_files(tmp_path_factory.mktemp("inputs"))


def _snapshot(*folders):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for d in folders for p in sorted(d.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, files, tmp_path, monkeypatch, capsys):
    _, argv, want_code, words = case
    monkeypatch.chdir(tmp_path)  # where a default --out (runs/...) would land
    folder = files["run"].parent
    before = _snapshot(folder, tmp_path)
    try:
        code = main(expand(argv, files))
    except SystemExit as e:  # argparse
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == want_code, err
    assert _snapshot(folder, tmp_path) == before  # nothing changed, nothing new (no lock, no partial file)
    if want_code:
        assert words in err and len(err.splitlines()) == 1 and "Traceback" not in err, err


def test_overwrite_replaces_only_the_same_commands_output(files, tmp_path, capsys):
    out = tmp_path / "verdicts.nc"
    assert main(["tickets", str(files["run"]), "--out", str(out)]) == 0
    assert main(["tickets", str(files["run"]), "--out", str(out)]) == 2  # exists, and no --overwrite this time
    assert "already exists" in capsys.readouterr().err
    before = out.stat().st_mtime_ns
    assert main(["tickets", str(files["other_run"]), "--out", str(out), "--overwrite"]) == 0
    assert out.stat().st_mtime_ns != before
    assert "tickets" in xr.open_datatree(out, engine="h5netcdf").children
    assert main(["flow", str(files["run"]), "--out", str(out), "--overwrite"]) == 2  # another command's output
    assert "not a file that `rgnet flow --out` wrote" in capsys.readouterr().err


def test_diverging_run_is_recorded_stopped_and_left_out_of_verdicts(tmp_path, capsys):
    argv = ["record", "--widths", "16", "--steps", "60", "--eval-every", "20", "--levels", "3", "--optimizer",
            "sgd", "--lr", "1000", "--out", str(tmp_path / "d.h5"), "--quiet"]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "diverged at level" in err and len(err.strip().splitlines()) == 1
    ds = rgnet.open_run(tmp_path / "d.h5")
    last = ds.isel(level=-1)
    assert int(last.diverged) == 1 and int(last.diverged_iteration) > 0
    assert (ds.diverged.values[:-1] == 0).all()  # levels before it trained normally
    before = hashlib.sha256((tmp_path / "d.h5").read_bytes()).hexdigest()
    assert main(argv) == 3  # re-running says the same and trains nothing
    assert hashlib.sha256((tmp_path / "d.h5").read_bytes()).hexdigest() == before
    v = rgnet.winning_tickets([tmp_path / "d.h5"])
    assert v.run_acc.sel(arm="imp").isel(level=ds.sizes["level"] - 1).isnull().all()
    assert not bool(v.run_matching.sel(arm="imp").isel(level=ds.sizes["level"] - 1))


def test_divergence_is_found_at_the_first_evaluation_after_it(small_cfg):
    """A NaN that appears in the weights is caught at the next evaluation, and training stops there."""
    import torch

    from rgnet.engine.loop import DeviceData, train_level
    from rgnet.engine.masks import Masker, full_masks
    from rgnet.engine.seeds import stream_seed
    from rgnet.imp.driver import build, normalise
    from rgnet.tasks import load_task

    cfg = normalise(small_cfg)
    task = load_task(cfg.task)
    model, layers, _ = build(cfg, task, torch.device("cpu"))
    data = DeviceData.from_task(task, torch.device("cpu"))
    calls = []

    def poison(it, metrics):
        calls.append(it)
        if it == 20:
            with torch.no_grad():
                layers["fc2"][0, 0] = float("nan")

    result, _ = train_level(model, Masker(layers, full_masks(layers)), data, cfg.train, stream_seed(0, "d"),
                            on_eval=poison)
    assert result.diverged_at == 20 and calls == [0, 20]
    assert np.isnan(result.curves["val_loss"][2:]).all()
    assert result.stop_iteration in (0, 20)  # early stopping looks only at finite evaluations


def test_broken_pipe_is_quiet(files):
    """`rgnet tickets ... | head -0`: no traceback, no 'disk error', the conventional SIGPIPE status."""
    runs = [str(files[k]) for k in ("run", "other_run", "sparse")]
    p = subprocess.Popen([sys.executable, "-m", "rgnet.cli", "tickets", *runs],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait() in (0, 141) and err == "", err


def test_old_files_without_divergence_flags_are_read(files, tmp_path):
    """Schema-1 files recorded before the divergence flags existed still give verdicts."""
    import shutil

    old = tmp_path / "old.h5"
    shutil.copy(files["run"], old)
    with h5py.File(old, "a") as f:
        del f["diverged"], f["diverged_iteration"]
    v = rgnet.winning_tickets([old])
    assert v.run_acc.sel(arm="imp").notnull().all()
