"""Reading a mixed family as a scientist would: every task parameter a coordinate, short task names from the
spec, arms named in full. On the committed data/transfer-family (7 tasks, mnist1d and teacher, 5 seeds)."""

import glob
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import rgnet
from rgnet.cli import main
from rgnet.errors import ConfigError
from rgnet.verdicts import format_tickets

ROOT = Path(__file__).resolve().parents[1]
FAMILY = str(ROOT / "data/transfer-family/*.h5")
SPEC = ROOT / "scripts/transfer_family.toml"


@pytest.fixture(scope="module")
def labels():
    return rgnet.task_labels(SPEC)


def test_task_labels_come_from_the_spec(labels):
    assert labels["mnist1d(shuffle_seq=true)"] == "shuffled" and labels["teacher"] == "teacher"
    assert len(labels) == 7


def test_open_runs_groups_by_a_parameter_only_some_tasks_set(labels):
    runs = rgnet.open_runs(FAMILY, labels=labels)
    noise = runs.test_acc.isel(level=0).groupby("task_corr_noise_scale").mean("run")
    assert list(noise.task_corr_noise_scale.values) == [0.25, 0.3, 0.4]   # teacher runs: NaN, left out
    tasks = runs.task.values
    assert np.isnan(runs.task_corr_noise_scale.values[tasks == "teacher"]).all()
    assert (runs.task_corr_noise_scale.values[tasks == "default"] == 0.25).all()        # the default filled in
    assert (runs.task_support.values[tasks == "teacher"] == 0).all()   # recorded before `support` existed


@pytest.mark.slow
def test_the_readme_recipe_for_plain_open_mfdataset():
    files = sorted(glob.glob(FAMILY))
    ds = xr.open_mfdataset(files, preprocess=rgnet.as_run, combine="nested", concat_dim="run", join="outer",
                           engine="h5netcdf")
    assert ds.sizes["run"] == len(files) == 35
    g = ds.test_acc.isel(level=0).groupby("task_corr_noise_scale").mean("run")
    assert g.sizes["task_corr_noise_scale"] == 3
    np.testing.assert_allclose(g.values, rgnet.open_runs(FAMILY).test_acc.isel(level=0)
                               .groupby("task_corr_noise_scale").mean("run").values)


def test_transfer_arms_pool_seeds_under_full_names(labels):
    v = rgnet.winning_tickets(FAMILY, labels=labels)
    transfers = [a for a in v.arm.values if a.startswith("transfer from ")]
    assert "transfer from shuffled" in transfers
    assert {"transfer from default", "transfer from default [aligned inputs]",
            "transfer from default [aligned inputs+units]"} <= set(transfers)
    assert int(v.seeds.sel(experiment="shuffled", arm="transfer from default", level=1)) == 5
    text = format_tickets(v)
    assert "transfer from default [aligned inputs+units]" in text                       # not cut short
    m = rgnet.transfer_matrix(FAMILY, labels=labels)
    assert m.gap.sel(target="shuffled", source="default").dims == ("level",)


def test_labels_on_the_command_line(tmp_path, capsys):
    assert main(["tickets", *sorted(glob.glob(FAMILY))[:5], "--labels", str(SPEC)]) == 0
    assert "\ndefault  (5 seeds" in capsys.readouterr().out
    assert main(["tickets", FAMILY.replace("*", "default-s0"), "--labels", "[1]"]) == 2
    assert main(["tickets", FAMILY.replace("*", "default-s0"), "--labels", '{"mnist1d": 3}']) == 2
    assert "is not a JSON object" in capsys.readouterr().err
    (tmp_path / "two.toml").write_text('[tasks.a]\nname = "teacher"\n[grid]\n"train.lr" = [0.1, 0.2]\n')
    with pytest.raises(ConfigError, match="more than one label"):
        rgnet.task_labels(tmp_path / "two.toml")


def test_printouts_say_what_their_numbers_mean(labels):
    from rgnet.rg import flow_report
    from rgnet.rg.summary import format_flow_report
    from rgnet.verdicts import format_transfer_matrix

    few = [str(ROOT / f"data/transfer-family/{t}-s{s}.h5") for t in ("default", "shuffled") for s in (0, 1, 2)]
    note = "decides on how deep the ticket stays matching, not on this gap"
    assert note in format_transfer_matrix(rgnet.transfer_matrix(few, labels=labels, rule="one_dense_std"))
    assert note not in format_transfer_matrix(rgnet.transfer_matrix(few, labels=labels))   # noninferior: the gap
    text = format_flow_report(flow_report(few[:2], n_boot=20))
    assert " -1 " not in text.splitlines()[2] and "fixed@: first level from which" in text
