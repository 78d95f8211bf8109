"""The flow report for the CLI: netCDF round trip, plain-text table, and the ds.rg accessor."""

import numpy as np
import pytest
import xarray as xr

import rgnet.rg as rg
from rgnet.rg._synthetic import synthetic_run


def test_flow_report_round_trips_through_netcdf(tmp_path):
    runs = [synthetic_run(levels=6 + k, seed=k, run_id=f"run-{k}") for k in range(3)]
    report = rg.flow_report(runs, n_boot=30)
    assert report.sizes["run"] == 3 and report.sizes["level"] == 7
    assert list(report["run_id"].values) == ["run-0", "run-1", "run-2"]
    assert report["fixed_point_level"].dtype.kind == "i"
    assert report["exponent_ci"].dims == ("run", "mode", "bound")
    assert all(report[v].dtype.kind != "c" for v in report.variables)
    for v in report.data_vars:
        assert "long_name" in report[v].attrs, v
    out = tmp_path / "flow.nc"
    report.to_netcdf(out, engine="h5netcdf")
    back = xr.load_dataset(out, engine="h5netcdf")
    xr.testing.assert_allclose(back.drop_vars("kind"), report.drop_vars("kind"))
    assert list(back["kind"].values.ravel()) == list(report["kind"].values.ravel())
    text = rg.format_flow_report(back)
    assert "run-2" in text and "|lambda|" in text and "fc3" in text
    assert "pooled (3 runs)" in text and report["pooled_exponent_ci"].dims == ("mode", "bound")


def test_flow_report_from_files_and_run_dim(tmp_path):
    paths = []
    for k in range(2):
        paths.append(tmp_path / f"r{k}.h5")
        synthetic_run(levels=5, seed=k, run_id=f"file-{k}").to_netcdf(paths[-1], engine="h5netcdf")
    from_files = rg.flow_report(paths, n_boot=10)
    assert list(from_files["run_id"].values) == ["file-0", "file-1"]
    stacked = xr.concat([synthetic_run(levels=5, seed=k) for k in range(2)], dim="run")
    from_ds = stacked.rg.report(n_boot=10)
    np.testing.assert_allclose(from_ds["w1_shape"].values, from_files["w1_shape"].values)


def test_flow_report_survives_runs_too_short_to_fit():
    report = rg.flow_report(synthetic_run(levels=2), n_boot=5)
    assert report.sizes["run"] == 1 and "eigenvalue_abs" not in report
    assert "too few levels" in rg.format_flow_report(report)
    mixed = rg.flow_report([synthetic_run(levels=2, run_id="short"), synthetic_run(levels=8, run_id="long")], n_boot=5)
    assert np.isnan(mixed["eigenvalue_abs"].sel(run=0)).all() and np.isfinite(mixed["eigenvalue_abs"].sel(run=1)).all()
    assert list(mixed["kind"].values[0]) == ["", "", ""]
    text = rg.format_flow_report(mixed)
    assert "short" in text.split("W1")[0] and "long" in text


def test_accessor_forwards_kind_and_options():
    """Each ds.rg method uses the coupling kind and the options it is given (not the defaults)."""
    ds = synthetic_run(levels=13, seed=4, layers=("fc1",), sizes=(4000,))
    lin = ds.rg.linearise("shape", b=2.0, n_boot=10)
    assert all(str(c).split(":")[0] in ("kurtosis", "absq25", "absq50", "absq75", "absq90")
               for c in lin.coupling.values)
    np.testing.assert_allclose(lin.exponents, np.log(abs(lin.eigenvalues)) / np.log(2.0))
    assert ds.rg.scale_factor() == pytest.approx(1 / 0.8, rel=0.02)  # 20 % pruned per level
    modes = ds.rg.dmd("density", rank=1)  # one layer: a one-dimensional density trajectory
    assert modes.sizes["mode"] == 1 and all(str(f).startswith("log_density:") for f in modes.feature.values)
    raw, rewound = ds.rg.flow(), ds.rg.flow("hist_rewind")
    assert not np.allclose(raw.w1.values, rewound.w1.values)
