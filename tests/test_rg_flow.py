"""Couplings and Wasserstein flow on synthetic run Datasets with the rgnet run-file schema."""

import numpy as np
import pytest
import xarray as xr
from scipy import stats

import rgnet.rg as rg
from rgnet.errors import ConfigError
from rgnet.rg._synthetic import synthetic_run, synthetic_tensors
from rgnet.rg.couplings import SHAPE_QUANTILES


def with_histograms(hist: np.ndarray, w_std: np.ndarray | None = None) -> xr.Dataset:
    """A schema Dataset (levels, 1 layer, 64 bins, bin_scale 1) carrying the given histograms."""
    ds = synthetic_run(levels=hist.shape[0], layers=("fc1",), sizes=(100,), seed=0, atoms=False)
    ds = ds.assign(hist=(("level", "layer", "bin"), hist[:, None, :]), bin_scale=("layer", [1.0]))
    if w_std is not None:
        ds = ds.assign(w_std=(("level", "layer"), np.asarray(w_std, float)[:, None]))
    return ds


def gaussian_counts(ds: xr.Dataset, sigma: float) -> np.ndarray:
    edges = np.append(ds["bin_bounds"].values[:, 0], ds["bin_bounds"].values[-1, 1])
    return 1e6 * np.diff(stats.norm.cdf(edges / sigma))


def test_w1_zero_for_identical_and_equal_to_shift():
    base = np.zeros(64)
    base[20:30] = np.arange(1, 11)
    width = 2.0 / 64
    same = rg.wasserstein_flow(with_histograms(np.stack([base, base])))
    assert float(same["w1"].max()) == pytest.approx(0.0, abs=1e-12)
    for k in (1, 5, 17):
        shifted = rg.wasserstein_flow(with_histograms(np.stack([base, np.roll(base, k)])))
        assert float(shifted["w1"].item()) == pytest.approx(k * width, rel=1e-9)
    scaled = with_histograms(np.stack([base, np.roll(base, 3)])).assign(bin_scale=("layer", [0.5]))
    assert float(rg.wasserstein_flow(scaled)["w1"].item()) == pytest.approx(3 * width * 0.5, rel=1e-9)


def test_shape_w1_vanishes_when_only_the_scale_runs():
    ds0 = with_histograms(np.zeros((2, 64)))
    sig = np.array([0.25, 0.15])
    ds = with_histograms(np.stack([gaussian_counts(ds0, s) for s in sig]), w_std=sig)
    flow = rg.wasserstein_flow(ds)
    # raw W1 between N(0, s1) and N(0, s2) is |s1 - s2| E|z| = |s1 - s2| sqrt(2 / pi)
    assert float(flow["w1"].item()) == pytest.approx(0.1 * np.sqrt(2 / np.pi), rel=0.02)
    assert float(flow["w1_shape"].item()) < 0.01
    assert float(flow["d_log_scale"].item()) == pytest.approx(np.log(0.15 / 0.25))
    assert flow["w1_shape"].attrs["long_name"] and flow["w1"].attrs["units"]


def test_shape_converges_while_scale_runs_on_synthetic_runs():
    ds = synthetic_run(levels=6, sizes=(40000, 40000, 40000), decay=0.8, dist="normal", seed=3)
    flow = ds.rg.flow()
    assert flow.sizes["level"] == 5 and flow["level"].values.tolist() == [0, 1, 2, 3, 4]
    assert float(flow["w1_shape"].max()) < 0.03
    np.testing.assert_allclose(flow["d_log_scale"].values, np.log(0.8), atol=0.02)
    assert float(flow["w1"].min()) > 0
    assert rg.fixed_point_level(flow, tol=0.03).item() == 0
    assert rg.fixed_point_level(flow["w1"], tol=1e-6).item() == -1


def test_couplings_kinds_and_scale_factor():
    ds = synthetic_run(levels=5, seed=1)
    scale = rg.couplings(ds)
    assert scale.dims == ("level", "coupling")
    assert list(scale["coupling"].values) == ["log_std:fc1", "log_std:fc2", "log_std:fc3"]
    assert scale.attrs["scale_factor"] == pytest.approx(1.25, rel=1e-3)
    assert scale.attrs["long_name"]
    np.testing.assert_allclose(scale.values, np.log(ds["w_std"].values))
    both = ds.rg.couplings(["scale", "shape", "density"])
    assert both.sizes["coupling"] == 3 * (1 + 1 + len(SHAPE_QUANTILES) + 1)
    # Laplace weights: excess kurtosis ~ 3, median |w| / std = ln 2 / sqrt 2
    shape = rg.couplings(ds, "shape")
    assert float(shape.sel(coupling="kurtosis:fc1").isel(level=0)) == pytest.approx(3.0, abs=0.6)
    assert float(shape.sel(coupling="absq50:fc1").isel(level=0)) == pytest.approx(np.log(2) / np.sqrt(2), abs=0.03)
    with pytest.raises(ConfigError, match="scale"):
        rg.couplings(ds, "entropy")


def test_scale_factor_from_density_and_config():
    ds = synthetic_run(levels=4, fraction=0.2)
    assert rg.scale_factor(ds) == pytest.approx(1.25, rel=1e-3)
    assert rg.scale_factor(ds.isel(level=[0])) == pytest.approx(1.25)


def test_couplings_with_run_dim_and_open_runs(tmp_path):
    paths = []
    for seed in range(3):
        p = tmp_path / f"run{seed}.h5"
        synthetic_run(levels=4 + seed, seed=seed).to_netcdf(p, engine="h5netcdf")
        paths.append(p)
    ds = xr.open_mfdataset(paths, engine="h5netcdf", combine="nested", concat_dim="run", join="outer")
    traj = rg.couplings(ds)
    assert traj.dims == ("run", "level", "coupling")
    assert np.isnan(traj.isel(run=0, level=-1).values).all()  # shorter run padded with NaN
    flow = rg.wasserstein_flow(ds)
    assert flow["w1_shape"].dims == ("run", "level", "layer")
    assert rg.fixed_point_level(flow, tol=1.0).dims == ("run",)
    speed = rg.flow_speed(traj)
    assert speed.dims == ("run", "level") and speed.attrs["long_name"]


def test_fixed_point_level_from_trajectory():
    traj = xr.DataArray(
        np.array([[1.0, 0.5, 0.2, 0.1001, 0.1, 0.1]]).T, dims=("level", "coupling"), coords={"level": np.arange(6)}
    )
    assert rg.fixed_point_level(traj, tol=1e-3).item() == 3
    assert rg.fixed_point_level(traj, tol=1e-6).item() == 4
    assert rg.fixed_point_level(traj * np.arange(1, 7)[:, None], tol=1e-3).item() == -1


def test_microscopic_flattens_selected_layers():
    tensors = synthetic_tensors(levels=4)
    all_w = rg.microscopic(tensors)
    assert all_w.dims == ("level", "component") and all_w.sizes["component"] == 30 * 40 + 30 + 10 * 30
    fc1 = rg.microscopic(tensors, layers=["fc1"])
    assert set(fc1["parameter"].values) == {"fc1.weight", "fc1.bias"}
    np.testing.assert_array_equal(fc1.isel(level=2).values[: 1200], tensors["fc1.weight"].isel(level=2).values.ravel())
    assert (all_w.isel(level=3) == 0).mean() == pytest.approx(1 - 0.8**3, abs=0.01)
    out = rg.dmd(fc1, rank=2)
    assert out.sizes["feature"] == fc1.sizes["component"] and "parameter" in out.coords
    with pytest.raises(ConfigError):
        rg.microscopic(tensors, layers=["conv1"])


def test_the_interval_of_the_eigenvalue_decides_its_kind():
    from rgnet.rg.linearise import classify

    ci = [[0.51, 2.90], [0.6, 0.95], [1.1, 1.3], [0.97, 1.03], [np.nan, np.nan]]
    got = classify([0.8, 0.8, 1.2, 1.0, 1.2], 0.05, ci)
    assert list(got) == ["undecided", "irrelevant", "relevant", "marginal", "relevant"]   # NaN: the point decides
