"""Damaged runs are found and named (exit 3), never read as if intact; a full disk is one sentence (exit 2),
leaves what was committed intact, and the retry resumes to the files of an uninterrupted run."""

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from bad_input_cases import make_files
from test_store import SCHEMA1

import rgnet
from rgnet.cli import main
from rgnet.store.writer import tensor_dir
from rgnet.sweep.compare import differences

SMALL = ["--widths", "16", "--steps", "40", "--eval-every", "20", "--batch-size", "50", "--quiet"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_files(tmp_path_factory.mktemp("inputs"))


def _copy(run: Path, dst: Path) -> Path:
    shutil.copy(run, dst)
    shutil.copytree(tensor_dir(run), tensor_dir(dst))
    return dst


def _flip(path: Path, variable: str) -> None:
    """Flip one byte inside the first chunk of ``variable`` (a disk error under a checksummed dataset)."""
    with h5py.File(path, "r") as f:
        offset = f[variable].id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    data[offset + 5] ^= 0xFF
    path.write_bytes(bytes(data))


def _check(path: Path, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["info", "--check", str(path)])
    return code, capsys.readouterr().out


def test_check_passes_an_intact_run(files, capsys):
    code, out = _check(files["run"], capsys)
    assert code == 0 and "every checksum matched" in out and "level" in out


@pytest.mark.parametrize("damage, words", [
    ("swapped", "level_002.nc: holds level 1, not level 2"),
    ("foreign", "init.nc: belongs to run"),
])
def test_check_names_a_level_file_that_is_not_its_level(files, capsys, damage, words):
    code, out = _check(files[damage], capsys)
    assert code == 3 and words in out, out


def test_check_names_missing_and_foreign_files(files, tmp_path, capsys):
    run = _copy(files["run"], tmp_path / "r.h5")
    (tensor_dir(run) / "level_001.nc").unlink()
    code, out = _check(run, capsys)
    assert code == 3 and "level_001.nc: missing" in out, out
    shutil.rmtree(tensor_dir(run))
    shutil.copytree(tensor_dir(files["other_run"]), tensor_dir(run))  # another run's whole folder
    code, out = _check(run, capsys)
    assert code == 3 and out.count("belongs to run") == 4, out  # init.nc and levels 0-2


def test_check_names_a_damaged_summary_chunk_and_readers_exit_3(files, tmp_path, capsys):
    run = _copy(files["run"], tmp_path / "r.h5")
    _flip(run, "w_qf")
    code, out = _check(run, capsys)
    assert code == 3 and "variable 'w_qf' is damaged" in out and "free space" not in out, out
    code = main(["flow", str(run)])  # a reader that meets the damaged chunk
    err = capsys.readouterr().err
    assert code == 3 and "failed its checksum" in err and len(err.strip().splitlines()) == 1, err


def test_check_recomputes_coordinates_that_carry_no_checksum(files, tmp_path, capsys):
    for name in ("bin", "iteration", "quantile", "level"):
        run = _copy(files["run"], tmp_path / f"{name}.h5")
        with h5py.File(run, "a") as f:
            f[name][1] = f[name][1] + 1
        code, out = _check(run, capsys)
        assert code == 3 and f"coordinate {name!r}" in out, out


def test_a_run_given_twice_counts_once(files, capsys):
    capsys.readouterr()
    assert main(["tickets", str(files["run"]), str(files["run"])]) == 0
    out, err = capsys.readouterr()
    assert "(1 seeds" in out and "counted once" in err and len(err.strip().splitlines()) == 1, err
    with pytest.warns(rgnet.errors.DuplicateRunWarning):
        v = rgnet.winning_tickets([files["run"], files["run"]])
    assert v.sizes["run"] == 1


# ---------------------------------------------------------------------------------------------- full disk

def _limited(argv: list[str], cwd: Path, limit: int) -> subprocess.CompletedProcess:
    """``rgnet argv`` with a file-size limit of ``limit`` bytes (the path a full disk or a quota takes)."""
    code = ("import resource, sys; from rgnet.cli import main; "
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); sys.exit(main({argv!r}))")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True)


def _hashes(folder: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow   # default suite under 3 minutes; .ci/run runs it
def test_a_write_error_is_one_sentence_and_changes_nothing(files, tmp_path):
    _copy(files["run"], tmp_path / "r.h5")
    shutil.copy(SCHEMA1, tmp_path / "old.h5")
    before = _hashes(tmp_path)
    for argv in (["tickets", "r.h5", "--out", "v.nc"], ["record", *SMALL, "--levels", "2", "--out", "new.h5"],
                 ["upgrade", "old.h5"]):
        p = _limited(argv, tmp_path, 20_000)
        assert p.returncode == 2, (argv, p.returncode, p.stderr)
        assert "could not write" in p.stderr and "File too large" in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
        after = _hashes(tmp_path)
        assert {k: v for k, v in after.items() if k in before} == before  # nothing committed changed
    assert not (tmp_path / "v.nc").exists() and not (tmp_path / "new.h5").exists()
    assert main(["upgrade", str(tmp_path / "old.h5")]) == 0  # the retry completes
    assert rgnet.verify(tmp_path / "old.h5") == []


def test_a_full_disk_mid_run_resumes_to_the_uninterrupted_files(tmp_path, monkeypatch):
    """Recorded into a 260 kB file system: the disk fills after a few levels; resumed elsewhere, the files equal
    an uninterrupted run's (except wall times)."""
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=260k", "tmpfs", str(tiny)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here ({mounted.stderr.decode().strip()})")
    try:
        argv = ["record", *SMALL, "--levels", "8", "--out", "r.h5"]
        p = subprocess.run([sys.executable, "-m", "rgnet.cli", *argv], cwd=tiny, capture_output=True, text=True)
        assert p.returncode == 2 and "No space left on device" in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1
        assert rgnet.verify(tiny / "r.h5") == []  # what was committed is intact
        done = int(rgnet.open_run(tiny / "r.h5").sizes["level"])
        assert 0 < done < 9
        _copy(tiny / "r.h5", tmp_path / "r.h5")
    finally:
        subprocess.run(["umount", str(tiny)], check=False)
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 0
    assert main(["record", *SMALL, "--levels", "8", "--out", "full.h5"]) == 0
    assert differences(tmp_path / "r.h5", tmp_path / "full.h5") == []
