"""The run-file format: portable HDF5, CF attributes, exact W1, checksums, upgrades, identity, locking."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr
from conftest import record_interrupted, small_config
from scipy.stats import wasserstein_distance

import rgnet
from rgnet.cli import main
from rgnet.store.writer import LIBVER, exclusive, lock_fd, tensor_dir

# a small run recorded by rgnet 0.1 at commit a7582ce (schema 1; trunk with tensors, reinit and random-mask
# branches at levels 1-2): the format every reader must keep opening and `rgnet upgrade` must convert
SCHEMA1 = Path(__file__).resolve().parent / "fixtures" / "schema1.h5"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    # fc1 has 40 x 128 = 5120 weights: more survivors than QF_SIZE at level 0, fewer later (both atom regimes)
    cfg = small_config(model={"params": {"widths": [128, 32]}})
    return rgnet.record(cfg, tmp_path_factory.mktemp("store") / "run.h5", progress=False)


def _files(path):
    return [Path(path), *sorted(tensor_dir(path).rglob("*.nc"))]


def test_files_use_the_hdf5_1_10_format_and_old_readers_open_them(run):
    assert LIBVER == ("v110", "v110")
    for f in _files(run):
        head = f.read_bytes()[:9]
        assert head[:8] == b"\x89HDF\r\n\x1a\n" and head[8] <= 3, f"{f}: superblock version {head[8]}"
    ncdump, h5dump = shutil.which("ncdump"), shutil.which("h5dump")
    if not (ncdump or h5dump):
        pytest.skip("neither ncdump nor h5dump is installed (apt-get install netcdf-bin hdf5-tools)")
    for f in _files(run)[:3]:
        if ncdump:
            r = subprocess.run([ncdump, "-h", str(f)], capture_output=True, text=True)
            assert r.returncode == 0 and "HDF error" not in r.stderr, r.stderr
        if h5dump:  # Debian's h5dump links HDF5 1.10: every dataset's data must decode
            r = subprocess.run([h5dump, str(f)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            assert r.returncode == 0 and "error" not in r.stderr.lower(), r.stderr[-500:]


def test_cf_hygiene_of_a_run_file(run):
    with h5py.File(run, "r") as f:
        ints = []
        f.visititems(lambda n, o: ints.append(n) if isinstance(o, h5py.Dataset) and o.dtype.kind in "iu"
                     and o.dtype.itemsize > 4 else None)
        assert not ints, f"int64 variables (not CF 1.8): {ints}"
        units = {v.attrs["units"] for v in f.values() if isinstance(v, h5py.Dataset) and "units" in v.attrs}
        assert units <= {"1", "s"}, units
        assert "history" in f.attrs and f.attrs["Conventions"] == "CF-1.8"
    with h5py.File(_files(run)[-1], "r") as f:
        names = []
        f.visit(names.append)
        assert not [n for n in names if "." in n.split("/")[-1]], "no dots in variable names"
        assert f["trained/fc1_weight"].attrs["parameter"] == "fc1.weight"


def test_plain_open_mfdataset_labels_every_run(run, tmp_path):
    other = rgnet.record(small_config(model={"params": {"widths": [64, 32]}}, seed=1, prune={"levels": 1}),
                         tmp_path / "other.h5", progress=False)
    ds = xr.open_mfdataset([run, other], engine="h5netcdf", combine="nested", concat_dim="run", join="outer")
    assert list(ds.seed.values) == [0, 1] and ds.run_id.dims == ("run",)
    assert len(set(ds.run_id.values)) == 2 and str(ds.task.values) == "mnist1d"
    assert "task_num_samples" in ds.coords
    runs = rgnet.open_runs([run, other])
    assert list(runs.seed.values) == [0, 1] and list(runs.task.values) == ["mnist1d"] * 2


def test_open_run_equals_plain_xarray(run):
    fast = rgnet.open_run(run)
    plain = xr.open_dataset(run, engine="h5netcdf").isel(level=slice(0, 4)).load()
    xr.testing.assert_identical(fast, plain)


def test_w1_matches_scipy_on_the_recorded_weights(run):
    ds = rgnet.open_run(run)
    trained, masks = rgnet.open_tensors(run, "trained").load(), rgnet.open_tensors(run, "mask").load()
    n = ds.sizes["level"]
    errors = []
    for layer in ds.layer.values:
        surv = [trained[f"{layer}.weight"].values[i][masks[layer].values[i] == 1] for i in range(n)]
        for a in range(n):
            for b in range(a + 1, n):
                exact = wasserstein_distance(surv[a], surv[b])
                shape = wasserstein_distance(surv[a] / surv[a].std(), surv[b] / surv[b].std())
                ours = rgnet.rg.wasserstein(ds.sel(level=a, layer=layer), ds.sel(level=b, layer=layer))
                ours_shape = rgnet.rg.wasserstein(ds.sel(level=a, layer=layer), ds.sel(level=b, layer=layer),
                                                  shape=True)
                errors += [abs(float(ours) / exact - 1), abs(float(ours_shape) / shape - 1)]
    assert max(errors) < 0.01, max(errors)
    flow = rgnet.rg.wasserstein_flow(ds)
    step = rgnet.rg.wasserstein(ds.isel(level=1), ds.isel(level=0))
    np.testing.assert_allclose(flow.w1.isel(level=0), step)
    # histograms are on each level's own grid: nothing is clipped
    np.testing.assert_array_equal(ds.hist.sum("bin"), ds.layer_count)
    assert (ds.bin_scale >= abs(ds.w_qf).max("atom")).all()


def test_checksums_find_damaged_data(tmp_path, capsys):
    path = rgnet.record(small_config(prune={"levels": 1}), tmp_path / "r.h5", progress=False)
    assert rgnet.verify(path) == []
    assert main(["info", "--check", str(path)]) == 0
    victim = tensor_dir(path) / "level_001.nc"
    with h5py.File(victim, "r") as f:
        offset = f["trained/fc2_weight"].id.get_chunk_info(0).byte_offset
    data = bytearray(victim.read_bytes())
    data[offset + 40] ^= 0xFF
    victim.write_bytes(bytes(data))
    problems = rgnet.verify(path)
    assert len(problems) == 1 and "fc2_weight" in problems[0]
    capsys.readouterr()
    assert main(["info", "--check", str(path)]) == 3
    assert "damaged (1 problem(s))" in capsys.readouterr().out


def test_upgrade_converts_a_schema_1_file(tmp_path):
    old = tmp_path / "seed0.h5"
    shutil.copyfile(SCHEMA1, old)
    assert rgnet.store.reader.check_run_file(old)["rgnet_schema"] == 1
    before = rgnet.open_run(old).load()
    trained_before = rgnet.read_tensors(old, "trained", 2)
    assert main(["upgrade", str(old)]) == 0
    after = rgnet.open_run(old)
    assert after.attrs["rgnet_schema"] == 2 and after.attrs["run_id"] == before.attrs["run_id"]
    for name in ("test_acc", "val_loss", "density", "layer_count", "curve_val_acc"):
        np.testing.assert_array_equal(after[name].values, before[name].values, err_msg=name)
    for name in ("w_std", "w_kurtosis", "w_quantile", "absw_quantile"):  # recomputed (sorted sums: last bit)
        np.testing.assert_allclose(after[name].values, before[name].values, rtol=1e-12, err_msg=name)
    for k, v in rgnet.read_tensors(old, "trained", 2).items():
        np.testing.assert_array_equal(v, trained_before[k])
    assert np.isfinite(after.w_qf.isel(atom=0)).all() and "upgrade" in after.attrs["history"]
    np.testing.assert_array_equal(after.hist.sum("bin"), after.layer_count)  # re-binned on each level's grid
    for g in rgnet.store.branches(old):  # the baselines' summaries carry over unchanged
        original = rgnet.open_run(SCHEMA1, g)
        np.testing.assert_array_equal(rgnet.open_run(old, g).test_acc, original.test_acc)
        np.testing.assert_array_equal(rgnet.open_run(old, g).hist, original.hist)
    assert rgnet.verify(old) == []
    snapshot = old.read_bytes()
    assert main(["upgrade", str(old)]) == 0 and old.read_bytes() == snapshot  # already current: untouched


def test_schema_1_files_are_refused_for_writing(tmp_path):
    src = SCHEMA1
    old = tmp_path / "old.h5"
    shutil.copyfile(src, old)
    before = old.read_bytes()
    with pytest.raises(rgnet.StoreError, match="rgnet upgrade"):  # a branch it does not have yet
        rgnet.run_baselines(old, ["rewind"], [1], rewind_to=5, progress=False)
    assert old.read_bytes() == before


def test_a_setting_added_later_keeps_run_id_and_resume(tmp_path, monkeypatch):
    """A file recorded before a config field existed: same run_id, and it resumes."""
    cfg, path = small_config(), tmp_path / "r.h5"
    record_interrupted(cfg, path, monkeypatch, stop_at=1)
    with h5py.File(path, "a") as f:  # as recorded before train.warmup and prune.target_density existed
        stored = json.loads(f.attrs["config"])
        del stored["train"]["warmup"], stored["prune"]["target_density"]
        f.attrs["config"] = json.dumps(stored, sort_keys=True, separators=(",", ":"))
        assert rgnet.RunConfig.from_dict(stored).run_id == f.attrs["run_id"]
    rgnet.record(cfg, path, progress=False)
    assert rgnet.open_run(path).sizes["level"] == 4
    with pytest.raises(rgnet.StoreError, match="config differs"):
        rgnet.record(cfg.replace(train={"warmup": 5}), path, progress=False)


def test_run_id_hashes_only_non_default_settings():
    base = rgnet.RunConfig()
    assert base.run_id == rgnet.RunConfig.from_dict({}).run_id
    assert base.replace(train={"lr": 1e-2}).run_id == base.run_id          # the default, spelled out
    assert base.replace(train={"lr": 1e-3}).run_id != base.run_id
    assert base.replace(store={"bins": 8}).run_id == base.run_id           # what is saved is no experiment
    from rgnet.imp.driver import normalise
    assert normalise(base).run_id == base.run_id                           # task defaults filled in: same id


def test_lock_cannot_be_held_twice_after_the_holder_removes_it(tmp_path):
    path = tmp_path / "run.h5"
    lock = path.with_name("run.h5.lock")
    with exclusive(path):
        late = os.open(lock, os.O_RDWR)       # a second writer opened the lock file, not yet locked it
    with exclusive(path):                     # a third takes the (new) lock file
        # the second now locks the removed file: it must notice, and then find the lock busy
        assert lock_fd(late, lock) is False
        with pytest.raises(rgnet.StoreError, match="another process"):
            with exclusive(path):
                pass
    assert not lock.exists()


def test_read_only_paths_do_not_import_torch(run):
    code = ("import sys, rgnet; from rgnet.cli import main; rgnet.open_run(sys.argv[1]); "
            "assert main(['info', sys.argv[1]]) == 0; assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-800:]


def test_microscopic_reads_trained_tensors(run):
    w = rgnet.rg.microscopic(rgnet.open_tensors(run), layers=["fc1"])
    assert w.dims == ("level", "component") and w.sizes["level"] == 4
    assert set(np.unique(w.parameter.values)) == {"fc1.weight", "fc1.bias"}


def test_open_tree_shows_summaries_and_tensors(run):
    tree = rgnet.open_tree(run)
    assert {"init", "rewind", "mask", "next_mask", "trained"} <= set(tree["tensors"].children)
    assert tree["tensors/trained"].sizes["level"] == tree.sizes["level"] == 4
    np.testing.assert_array_equal(tree["tensors/mask"]["fc2"].values[1:], tree["tensors/next_mask"]["fc2"].values[:-1])


def test_missing_tensor_folder_is_one_clear_error(tmp_path):
    path = rgnet.record(small_config(prune={"levels": 1}), tmp_path / "r.h5", progress=False)
    moved = tmp_path / "elsewhere.h5"
    shutil.copyfile(path, moved)
    with pytest.raises(rgnet.StoreError, match="copy that folder together with the run file"):
        rgnet.open_tensors(moved)


def test_theory_matches_numpy_and_scipy():
    from scipy import stats

    from rgnet.theory import QUANTILES, abs_quantiles, layer_theory, quantile_atoms, w1_atoms

    rng = np.random.default_rng(1)
    for n in (1, 2, 7, 60):
        x = np.sort(rng.normal(size=n) + rng.normal())
        np.testing.assert_allclose(abs_quantiles(x, QUANTILES), np.quantile(abs(x), QUANTILES))
    w, w0 = rng.laplace(size=(300, 70)).astype("f4"), rng.normal(size=(300, 70)).astype("f4")
    m = rng.random(w.shape) < 0.6
    t, s = layer_theory(w, w0, m, 16), w[m].astype(float)
    np.testing.assert_allclose(t["w_quantile"], np.quantile(s, QUANTILES))
    np.testing.assert_allclose(t["absw_quantile"], np.quantile(abs(s), QUANTILES))
    np.testing.assert_allclose([t["w_skew"], t["w_kurtosis"]], [stats.skew(s), stats.kurtosis(s)])
    np.testing.assert_array_equal(t["hist"], np.histogram(s / t["bin_scale"], np.linspace(-1, 1, 17))[0])
    a, b = rng.normal(size=5000), rng.normal(0.1, 1.2, size=300)   # more and fewer atoms than QF_SIZE
    assert abs(w1_atoms(quantile_atoms(a), quantile_atoms(b)) / stats.wasserstein_distance(a, b) - 1) < 0.01
    assert w1_atoms(quantile_atoms(b), quantile_atoms(b + 0.5)) == pytest.approx(0.5)


def test_a_diverged_level_has_no_statistics_of_its_trained_weights():
    """Every statistic of the trained weights is NaN (or an empty histogram) for a diverged level, whatever the
    theory computes: the rule lives in the theory, not in a list of names beside it."""
    from rgnet.store.schema import LEVEL_VARS
    from rgnet.theory import level_theory

    rng = np.random.default_rng(0)
    trained = {"a": rng.normal(size=(8, 5)), "b": rng.normal(size=(3, 8))}
    rewind = {k: rng.normal(size=v.shape) for k, v in trained.items()}
    masks = {k: rng.random(v.shape) < 0.6 for k, v in trained.items()}
    ok, bad = level_theory(trained, rewind, masks, 16), level_theory(None, rewind, masks, 16)
    assert set(ok) == set(bad) and set(ok) <= set(LEVEL_VARS)
    for name in ("layer_count", "layer_density", "rewind_std", "fan_in", "fan_out"):   # masks and rewound values
        np.testing.assert_array_equal(ok[name], bad[name])
    assert bad["hist"].sum() == 0 and np.isnan(bad["w_qf"]).all()
    for name in set(ok) - {"layer_count", "layer_density", "hist_rewind", "rewind_std", "hist", "bin_scale",
                           "fan_in", "fan_out"}:
        assert np.isnan(bad[name]).all(), name
    # what the recorder stored before this rule moved into the theory: zeroed weights, then a list of NaNs
    zeros = level_theory({k: np.zeros_like(v) for k, v in trained.items()}, rewind, masks, 16)
    for name in ("w_qf", "w_quantile", "absw_quantile", "w_mean", "w_std", "w_skew", "w_kurtosis", "w_absmean"):
        zeros[name] = np.full_like(zeros[name], np.nan, dtype=float)
    zeros["hist"] = np.zeros_like(zeros["hist"])
    for name in set(zeros) - {"fan_in_mass", "fan_out_mass"}:   # the relevance masses came later (NaN here)
        np.testing.assert_array_equal(zeros[name], bad[name], err_msg=name)
