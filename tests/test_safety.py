"""Bad input: one sentence, exit code 2, and files that are not ours are never touched."""

import hashlib

import h5py
import numpy as np
import pytest

import rgnet
from rgnet.cli import main


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize("argv, needle", [
    (["record", "--task", "no-such-task"], "valid tasks are"),
    (["record", "--model", "vgg99"], "valid models are"),
    (["record", "--fraction", "1.5"], "--fraction"),
    (["record", "--scope", "sideways"], "global or layerwise"),
    (["record", "--optimizer", "rmsprop"], "adam or sgd"),
    (["record", "--steps", "100", "--rewind", "100"], "--rewind"),
    (["record", "--task-param", "noise=1"], "valid parameters are"),
    (["record", "--task-param", "oops"], "KEY=VALUE"),
    (["record", "--config", "missing.toml"], "does not exist"),
    (["record", "--task", "mnist", "--data-root", "/nonexistent"], "mnist"),
    (["record", "--device", "cuda:7"], "cuda"),
    (["record", "--levels", "x"], "invalid int"),
    (["info", "missing.h5"], "does not exist"),
])
def test_bad_input_is_one_sentence_and_exit_2(capsys, argv, needle, monkeypatch):
    if argv[-1] == "cuda:7":
        import torch
        if torch.cuda.is_available():
            pytest.skip("machine has a GPU")
    try:
        code, err = _run(capsys, *argv)
    except SystemExit as e:  # argparse errors
        code, err = e.code, capsys.readouterr().err.strip()
    assert code == 2
    assert needle in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_foreign_files_are_never_modified(tmp_path, capsys, small_cfg):
    not_hdf5 = tmp_path / "notes.h5"
    not_hdf5.write_text("my precious notes")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    ours = rgnet.record(small_cfg.replace(prune={"levels": 1}), tmp_path / "ours.h5", progress=False)
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(ours.read_bytes()[:3000])
    for path, needle in ((not_hdf5, "not a readable HDF5"), (foreign, "not an rgnet run file"),
                         (corrupt, "not a readable HDF5"), (ours, "config differs in")):
        before = _digest(path)
        code, err = _run(capsys, "record", "--steps", "5", "--out", str(path), "--quiet")
        assert code == 2 and needle in err, err
        assert _digest(path) == before
    assert not list(tmp_path.glob("*.partial"))


def test_two_writers_never_share_a_file(tmp_path, small_cfg, capsys):
    from rgnet.store.writer import exclusive

    path = tmp_path / "busy.h5"
    with exclusive(path):
        code, err = _run(capsys, "record", "--steps", "5", "--out", str(path), "--quiet")
    assert code == 2 and "another process is recording" in err
    assert not path.exists() and not list(tmp_path.iterdir())


def test_unwritable_output_folder(tmp_path, capsys):
    code, err = _run(capsys, "record", "--steps", "5", "--out", "/proc/nope/run.h5", "--quiet")
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err


def test_flags_build_the_config():
    from rgnet.cli import _parser, config_from_args

    a = _parser().parse_args(["record", "--model", "lenet_300_100", "--no-prune-output", "--scope", "layerwise",
                              "--output-fraction", "0.1", "--task-param", "shuffle_seq=true", "--lr", "0.001",
                              "--rewind", "5", "--widths", "10,20"])
    cfg = config_from_args(a)
    assert cfg.model.prune_output is False and cfg.model.prune_first is None
    assert cfg.prune.scope == "layerwise" and cfg.prune.output_fraction == 0.1 and cfg.prune.rewind == 5
    assert cfg.task.params == {"shuffle_seq": True} and cfg.train.lr == 0.001
    assert cfg.model.params["widths"] == [10, 20]
    assert config_from_args(_parser().parse_args(["record"])) == rgnet.RunConfig()


def test_resume_refuses_changed_data(tmp_path, small_cfg, monkeypatch):
    import rgnet.imp.driver as driver

    calls, real = [], driver.train_stack

    def interrupted(*args, **kw):  # stop the run during its second level
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(driver, "train_stack", interrupted)
    path = tmp_path / "r.h5"
    with pytest.raises(KeyboardInterrupt):
        rgnet.record(small_cfg, path, progress=False)
    monkeypatch.setattr(driver, "train_stack", real)
    with h5py.File(path, "a") as f:  # pretend the file was recorded on other data
        assert f.attrs["levels_complete"] == 1
        f.attrs["task"] = '{"fingerprint": "0000"}'
    before = _digest(path)
    with pytest.raises(rgnet.StoreError, match="other data"):
        rgnet.record(small_cfg, path, progress=False)
    assert _digest(path) == before
