"""`rgnet flow` end to end on recorded runs."""

import pytest
import xarray as xr

import rgnet
from rgnet.cli import main


def test_flow_command_on_recorded_runs(tmp_path, small_cfg, capsys):
    cfg = small_cfg.replace(prune={"levels": 5}, store={"tensors": False})
    paths = [str(rgnet.record(cfg.replace(seed=s), tmp_path / f"s{s}.h5", progress=False)) for s in (0, 1)]
    out = tmp_path / "flow.nc"
    assert main(["flow", *paths, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "pooled (2 runs)" in text and "W1 of w/std" in text
    report = xr.open_dataset(out, engine="h5netcdf")
    assert report.sizes["run"] == 2 and report.sizes["level"] == 5
    assert (report.w1 >= 0).all() and float(report.scale_factor[0]) == pytest.approx(1 / 0.7, rel=1e-2)


def test_flow_command_bad_file(tmp_path, capsys):
    bad = tmp_path / "x.h5"
    bad.write_text("nope")
    assert main(["flow", str(bad)]) == 2
    assert "not a readable HDF5" in capsys.readouterr().err
