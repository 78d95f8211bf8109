"""Conventions and provenance: every run file names the machine that computed it (and every later one), tensor
files have named dimensions and a history, the CLI's --version, descriptions, choices and `ticket --overwrite`,
the dev extra, and a sweep on a LocalCluster that ends without dask's shutdown warnings."""

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import h5netcdf
import h5py
import numpy as np
import pytest
import xarray as xr
from conftest import TINY_SWEEP

import rgnet
from rgnet.cli import _choices, _parser, main
from rgnet.store.provenance import machine_lines, machine_summary
from rgnet.store.writer import copy_run, tensor_file, write_tensor_file

ROOT = Path(__file__).resolve().parents[1]
OLD_RUN = ROOT / "data" / "mnist1d-mlp" / "seed2.h5"   # recorded before runs named their machine or tensor dims


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _attrs(path) -> dict:
    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from conftest import small_config

    return rgnet.record(small_config(prune={"levels": 2}), tmp_path_factory.mktemp("run") / "run.h5", progress=False)


# ------------------------------------------------------------------------------------------ provenance


def test_a_run_file_names_the_machine_that_recorded_it(run, capsys):
    import torch

    attrs = _attrs(run)
    p = json.loads(attrs["provenance"])
    assert p["torch"] == torch.__version__ and p["device"] == "cpu" and p["threads"] == 1  # small model: 1 thread
    assert p["cpu"] and p["torch_blas"] and p["python"] and p["platform"] and p["rgnet"] == version("rgnet")
    record = machine_lines(attrs["history"])
    assert len(record) == 1 and f" rgnet {version('rgnet')} record: {machine_summary(p)}" in record[0]
    assert record[0].split()[0].endswith("Z")  # UTC
    assert f"torch {torch.__version__} (BLAS {p['torch_blas']}" in record[0] and "1 thread, cpu" in record[0]
    for f in (tensor_file(run, "init"), tensor_file(run, 1)):  # each tensor file names the machine that wrote it
        assert machine_summary(p) in _attrs(f)["history"]
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"recorded on: {machine_summary(p)}" in out and f"numpy {np.__version__}" in out
    assert "another machine" not in out


def test_work_on_another_machine_appends_to_history(tmp_path, monkeypatch, capsys):
    """A resume, a branch or a transfer on another machine adds a line; the same machine again adds none; the
    provenance of the creation stays."""
    from conftest import record_interrupted, small_config

    import rgnet.imp.driver as driver

    cfg = small_config(prune={"levels": 2})
    path = tmp_path / "moved.h5"
    record_interrupted(cfg, path, monkeypatch, stop_at=2, device="cpu")
    created = _attrs(path)
    real = driver.machine
    monkeypatch.setattr(driver, "machine", lambda *a, **k: {**real(*a, **k), "cpu": "Elsewhere CPU 9000"})
    rgnet.record(cfg, path, progress=False)                     # level 2 on the other machine
    rgnet.run_baselines(path, ["reinit"], [1, 2], progress=False)  # still the other machine: no new line
    monkeypatch.setattr(driver, "machine", real)
    rgnet.run_baselines(path, ["random_prune_global"], [1], progress=False)  # back home: a line again
    attrs = _attrs(path)
    assert attrs["provenance"] == created["provenance"]
    assert attrs["history"].startswith(created["history"] + "\n")  # earlier lines kept as they were
    lines = machine_lines(attrs["history"])
    assert len(lines) == 3
    assert " level 2: Elsewhere CPU 9000" in lines[1]
    assert " branches/random_prune_global level 1: " in lines[2] and "Elsewhere" not in lines[2]
    assert "Elsewhere CPU 9000" in _attrs(tensor_file(path, 2))["history"]
    assert "Elsewhere CPU 9000" not in _attrs(tensor_file(path, 1))["history"]
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "then committed on another machine" in out and "level 2: Elsewhere CPU 9000" in out


@pytest.mark.gpu
def test_a_cuda_run_names_its_gpu(tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from conftest import small_config

    path = rgnet.record(small_config(prune={"levels": 1}), tmp_path / "gpu.h5", device="cuda", progress=False)
    p = json.loads(_attrs(path)["provenance"])
    assert p["device"] == f"cuda:{torch.cuda.current_device()}" and p["gpu"] == torch.cuda.get_device_name()
    assert p["cuda"] == torch.version.cuda
    lines = machine_lines(_attrs(path)["history"])
    assert len(lines) == 1 and f"{p['device']} ({p['gpu']})" in lines[0]  # level commits: the same machine


def test_old_files_without_provenance_or_dim_names_still_open_and_check(tmp_path, capsys):
    if not OLD_RUN.is_file():
        pytest.skip(f"{OLD_RUN} is not there")
    path = tmp_path / OLD_RUN.name
    shutil.copyfile(OLD_RUN, path)
    shutil.copytree(OLD_RUN.with_name(OLD_RUN.name + ".tensors"), tmp_path / (OLD_RUN.name + ".tensors"))
    with h5netcdf.File(tensor_file(path, 1), "r") as f:
        assert any(d.startswith("d0_") for d in f.dimensions)  # the old dimension names
    assert "provenance" not in _attrs(path)
    before = _digest(path)
    assert main(["info", "--check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "recorded on: not recorded" in out and "every checksum matched" in out
    masks = rgnet.open_tensors(path, "mask")
    assert masks["fc1"].dims[0] == "level" and masks.sizes["level"] == 13
    assert rgnet.read_tensors(path, "trained", 1)["fc1.weight"].shape == masks["fc1"].shape[1:]
    assert _digest(path) == before


# ------------------------------------------------------------------------------------------ tensor files


def test_tensor_files_have_named_dims_and_a_history(run):
    f = tensor_file(run, 1)
    trained = xr.open_dataset(f, engine="h5netcdf", group="trained")
    assert trained["fc1_weight"].dims == ("fc1_out", "fc1_in") and trained["fc1_bias"].dims == ("fc1_out",)
    mask = xr.open_dataset(f, engine="h5netcdf", group="mask")
    assert mask["fc2"].dims == ("fc2_out", "fc2_in") and mask.sizes["fc2_in"] == trained.sizes["fc1_out"]
    assert "history" in _attrs(f) and "history" in _attrs(tensor_file(run, "init"))
    lazy = rgnet.open_tensors(run, "trained")   # the library's reader on the new names
    assert lazy["fc1.weight"].dims == ("level", "fc1_out", "fc1_in")
    ncdump = shutil.which("ncdump")
    if ncdump:
        header = subprocess.run([ncdump, "-h", str(f)], capture_output=True, text=True, check=True).stdout
        assert "float fc1_weight(fc1_out, fc1_in)" in header and ":history = " in header
        assert "d0_" not in header


def test_dims_of_convolutions_norms_and_clashes(tmp_path):
    """Weights (out, in, kernel...), biases along the weight's out, norms per channel, scalars without dims;
    a name taken with another size falls back to the variable's own name."""
    groups = {"init": {"conv.weight": np.zeros((8, 3, 5, 5), np.float32), "conv.bias": np.zeros(8, np.float32),
                       "c1.weight": np.zeros((4, 2, 7), np.float32), "bn.weight": np.ones(8, np.float32),
                       "bn.num_batches_tracked": np.array(0), "odd.weight": np.zeros((3, 4), np.float32),
                       "odd.bias": np.zeros(5, np.float32)},
              "mask": {"conv": np.ones((8, 3, 5, 5), np.uint8)}}
    out = tmp_path / "t.nc"
    write_tensor_file(out, {"run_id": "x", "group": "/"}, groups)
    init, mask = (xr.open_dataset(out, engine="h5netcdf", group=g) for g in ("init", "mask"))
    assert init["conv_weight"].dims == ("conv_out", "conv_in", "conv_kernel_h", "conv_kernel_w")
    assert mask["conv"].dims == init["conv_weight"].dims and init["conv_bias"].dims == ("conv_out",)
    assert init["c1_weight"].dims == ("c1_out", "c1_in", "c1_kernel")
    assert init["bn_weight"].dims == ("bn_channel",) and init["bn_num_batches_tracked"].dims == ()
    assert init["odd_bias"].dims == ("odd_bias_out",) and init.sizes["odd_bias_out"] == 5
    assert _attrs(out)["history"].split()[1:3] == ["rgnet", version("rgnet")]


# ------------------------------------------------------------------------------------------ the command line


def test_version_and_a_description_for_every_subcommand(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"rgnet {version('rgnet')}"
    sub = next(a for a in _parser()._actions if a.dest == "command")
    assert [name for name, p in sub.choices.items() if not p.description] == []


def test_help_lists_the_choices_from_the_library():
    from rgnet.config import OPTIMIZERS, SCOPES
    from rgnet.universality.classes import CLASS_METHODS
    from rgnet.verdicts import METRICS

    sub = next(a for a in _parser()._actions if a.dest == "command").choices
    shown = {cmd: " ".join(sub[cmd].format_help().split()) for cmd in ("record", "tickets", "universality")}
    assert f"--scope {_choices(SCOPES)}" in shown["record"] and f"--optimizer {_choices(OPTIMIZERS)}" in shown["record"]
    assert f"--metric {_choices(METRICS)}" in shown["tickets"]
    assert f"--classes {_choices(CLASS_METHODS)}" in shown["universality"]


def test_ticket_overwrite_replaces_a_ticket_and_nothing_else(run, tmp_path, capsys):
    out = tmp_path / "ticket.h5"
    assert main(["ticket", str(run), "--level", "1", "--out", str(out)]) == 0
    assert main(["ticket", str(run), "--level", "2", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and _attrs(out)["level"] == 1
    assert main(["ticket", str(run), "--level", "2", "--out", str(out), "--overwrite"]) == 0
    assert _attrs(out)["level"] == 2 and rgnet.load_ticket(out).level == 2
    other = copy_run(run, tmp_path / "other.h5")
    index = tmp_path / "index.nc"
    with h5py.File(index, "w") as f:
        f.attrs["rgnet_sweep_index"] = 1
    verdicts = tmp_path / "verdicts.nc"
    assert main(["tickets", str(run), "--out", str(verdicts)]) == 0
    capsys.readouterr()
    for target, needle in [(other, "never writes there"), (index, "a sweep's index"),
                           (tensor_file(run, 1), "tensor folder"), (verdicts, "not a file that `rgnet ticket --out`"),
                           (run, "one of the command's input files")]:
        before = _digest(target)
        assert main(["ticket", str(run), "--level", "1", "--out", str(target), "--overwrite"]) == 2, target
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err
        assert _digest(target) == before
    # another command's --overwrite still never replaces a ticket
    assert main(["tickets", str(run), "--out", str(out), "--overwrite"]) == 2
    assert "an rgnet ticket file" in capsys.readouterr().err and _attrs(out)["level"] == 2


def test_upgrade_of_a_current_file_says_so_in_one_line(run, capsys):
    before = _digest(run)
    assert main(["upgrade", str(run)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "already schema 2" in lines[0] and _digest(run) == before


def test_dev_extra_has_nbconvert_and_the_notebook_test_needs():
    try:
        import tomllib
    except ImportError:  # python 3.10
        import tomli as tomllib
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    names = {d.split(">")[0].split("=")[0].split("[")[0].strip() for d in dev}
    assert {"nbconvert", "nbclient", "nbformat", "ipykernel"} <= names


# ------------------------------------------------------------------------------------------ sweep shutdown


def test_quiet_restores_the_loggers():
    from rgnet.sweep import _SHUTDOWN_LOGGERS, _quiet

    nanny = logging.getLogger("distributed.nanny")
    before = nanny.level
    with _quiet():
        assert all(logging.getLogger(n).level == logging.ERROR for n in _SHUTDOWN_LOGGERS)
    assert nanny.level == before


@pytest.mark.slow   # a dask LocalCluster of worker processes
def test_a_sweep_on_a_local_cluster_ends_without_shutdown_warnings(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(TINY_SWEEP.split("[tasks.c]")[0])   # two trunks
    # each worker takes 5 s to exit, as one that has trained can take to unload torch on a busy machine (more
    # than the 4 s dask waits before it kills a worker with a warning): a preload script that dask runs in it
    slow = tmp_path / "slow_exit.py"
    slow.write_text("import atexit, time\natexit.register(time.sleep, 5)\n")
    r = subprocess.run([sys.executable, "-m", "rgnet.cli", "sweep", str(spec), "--dir", str(tmp_path / "out"),
                        "--workers", "2", "--dashboard", "none"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "DASK_DISTRIBUTED__WORKER__PRELOAD": json.dumps([str(slow)])})
    assert r.returncode == 0, r.stderr
    assert "2 units run" in r.stdout
    noise = [line for line in r.stderr.splitlines()
             if any(w in line for w in ("killing", "Restarting worker", "Stream is closed", "WARNING"))]
    assert noise == [], "\n".join(noise)
