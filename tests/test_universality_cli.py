"""Universality end to end on a tiny recorded family (with trained weights), from Python and from the CLI."""

import json

import numpy as np
import pytest
import xarray as xr
from conftest import small_config

import rgnet
from rgnet.cli import main
from rgnet.errors import ConfigError, DataError
from rgnet.rg._synthetic import synthetic_run
from rgnet.universality import SIGNATURES, signatures, symmetry_pairs, universality
from rgnet.universality._runs import read_runs

TASKS = {"mnist1d": {"name": "mnist1d", "params": {}},
         "mnist1d(shuffle_seq=true)": {"name": "mnist1d", "params": {"shuffle_seq": True}},
         "teacher": {"name": "teacher", "params": {}}}


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    """3 tasks x 2 seeds, 5 levels of 30 steps, trained weights kept; and a hand-made transfer matrix."""
    d = tmp_path_factory.mktemp("family")
    cfg = small_config().replace(prune={"levels": 4}, train={"steps": 30, "eval_every": 10})
    paths = [str(rgnet.record(cfg.replace(task=task, seed=s), d / f"{i}-s{s}.h5", progress=False))
             for i, task in enumerate(TASKS.values()) for s in (0, 1)]
    keys = list(TASKS)
    transfers = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]])
    transfers[0, 1] = 1.0  # mnist1d -> shuffled transfers, the rest does not
    gap = np.array([[0, -0.01, -0.05], [-0.03, 0, -0.06], [-0.08, -0.07, 0]])
    matrix = xr.Dataset({"transfers": (("source", "target"), transfers),
                         "gap_at_winning": (("source", "target"), gap)}, coords={"source": keys, "target": keys})
    verdicts = d / "verdicts.nc"
    matrix.to_netcdf(verdicts, engine="h5netcdf", group="transfer")
    return paths, matrix, verdicts, read_runs(paths)


def test_signatures_of_recorded_runs(family):
    paths, _, _, runs = family
    sigs = signatures(runs, ["dmd_micro", "dmd_ticket", "dmd_coarse", "fingerprint", "scaling"])
    assert set(sigs["dmd_micro"].task.values) == set(TASKS)
    lam = sigs["dmd_micro"]["eigenvalues"]
    assert lam.dims[0] == "run" and lam.sizes["run"] == 6 and np.iscomplexobj(lam.values)
    assert sigs["dmd_micro"]["amplitudes"].shape == lam.shape
    assert sigs["fingerprint"]["vector"].sizes["component"] == 4 * 3  # 4 steps x 3 layers
    skipped = {}
    signatures(runs, ["exponents"], skipped=skipped)  # 4 snapshot pairs per run cannot fit 3 couplings
    assert "exponents" in skipped and "snapshot pairs" in skipped["exponents"]
    with pytest.raises(ConfigError):
        signatures(runs, ["exponents"])


def test_universality_from_python(family):
    paths, matrix, _, runs = family
    ds = universality(runs, transfer=matrix, n_boot=5)
    assert "dmd_micro" in ds.signature.values and "exponents" not in ds.signature.values
    assert "exponents" in json.loads(ds.attrs["unavailable"])
    assert ds.p_value.dims == ("signature", "task", "other") and ds.sizes["task"] == 3
    assert np.all((ds.p_value >= 0) & (ds.p_value <= 1))
    # 2 seeds per task, labels exchanged within a seed: 4 splits, the swap of the two groups ties, so p >= 1/2;
    # exchanged between any runs: 6 splits, p >= 1/3. No pair separates either way.
    assert float(ds.p_min.min()) == pytest.approx(1 / 2) and ds.attrs["permute"] == "within_seed"
    assert (ds.class_id == 0).all()
    assert float(universality(runs, transfer=matrix, n_boot=2, names=["dmd_coarse"], baselines=False,
                              permute="runs").p_min.min()) == pytest.approx(1 / 3)
    for name in ("mask_iou", "input_distance", "dense_accuracy", "additive", "spectral_w1_2302", "dmd_micro"):
        assert name in ds.predictor.values
    assert np.all((ds.auroc.fillna(0.5) >= 0) & (ds.auroc.fillna(0.5) <= 1))
    assert bool(ds.symmetry.sel(source="mnist1d", target="mnist1d(shuffle_seq=true)"))
    assert not bool(ds.symmetry.sel(source="mnist1d", target="teacher"))
    assert symmetry_pairs(runs, list(TASKS)) == [("mnist1d", "mnist1d(shuffle_seq=true)",
                                                              ["shuffle_seq"])]


def test_universality_without_transfer_data_gives_classes_only(family):
    ds = universality(family[3], names=["dmd_coarse"], n_boot=2)
    assert "predictor" not in ds.dims and "scoring" in json.loads(ds.attrs["unavailable"])


@pytest.mark.slow   # default suite under 3 minutes; .ci/run runs it
def test_cli_end_to_end(family, tmp_path, capsys):
    paths, _, verdicts, _ = family
    out = tmp_path / "classes.nc"
    assert main(["universality", *paths, "--transfer", str(verdicts), "--n-boot", "3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "classes by dmd_micro" in text and "prediction of the measured transfer (" in text
    assert "primary: tau_w" in text
    assert "symmetry case" in text and f"wrote {out}" in text
    saved = xr.open_dataset(out, engine="h5netcdf")
    assert {"p_value", "class_share", "auroc", "auroc_ci", "tau_w", "p_auroc", "score", "tau_task_ci", "p_tau_holm",
            "beyond", "p_beyond_holm", "rho_gap"} <= set(saved.data_vars)
    assert main(["universality", *paths, "--transfer", str(verdicts), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["nope.h5", "nope2.h5"], "no run files match"),
    (["--signature", "bogus"], "unknown signature"),
    (["--classes", "cliques"], "unknown class method"),
    (["--transfer", "missing.nc"], "transfer file"),
    (["--alpha", "1.5"], "alpha must be between 0 and 1"),
])
def test_cli_bad_input(family, capsys, args, message):
    paths = family[0]
    argv = ["universality", *args] if args[0] == "nope.h5" else ["universality", *paths, *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_cli_one_seed_per_task(family, capsys):
    paths = family[0]
    assert main(["universality", paths[0], paths[2]]) == 2
    assert "at least 2 runs" in capsys.readouterr().err


def test_in_memory_datasets_and_missing_tensors():
    runs = []
    for task, decay in (("a", 0.9), ("b", 0.7)):
        for s in range(2):
            ds = synthetic_run(levels=8, decay=decay, seed=s)
            cfg = json.loads(ds.attrs["config"])
            cfg["task"]["params"] = {"kind": task}
            runs.append(ds.assign_attrs(config=json.dumps(cfg), run_id=f"{task}{s}"))
    sigs = signatures(runs, ["dmd_coarse"])
    assert list(sigs["dmd_coarse"].task.values) == ['synthetic(kind="a")'] * 2 + ['synthetic(kind="b")'] * 2
    with pytest.raises(DataError, match="without tensors"):
        signatures(runs, ["dmd_micro"])
    assert set(SIGNATURES) >= {"dmd_micro", "dmd_ticket", "dmd_coarse", "exponents", "fingerprint", "scaling"}
