"""Recording IMP runs: file layout, determinism, resume after a kill, interrupt safety."""

import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import xarray as xr

import rgnet
from rgnet.imp.driver import normalise
from rgnet.store.writer import check_run_file


def _attrs(path):
    try:
        return check_run_file(path)
    except Exception:
        return None


def _assert_same_run(a, b):
    da, db = rgnet.open_tree(a), rgnet.open_tree(b)
    for node in da.subtree:
        other = db[node.path]
        for name, var in node.dataset.data_vars.items():
            if name == "train_seconds":
                continue
            np.testing.assert_array_equal(var.values, other.dataset[name].values, err_msg=f"{node.path}/{name}")
    assert da.attrs["config"] == db.attrs["config"] and da.attrs["levels_complete"] == db.attrs["levels_complete"]


def test_file_opens_with_plain_xarray(tmp_path, small_cfg):
    path = rgnet.record(small_cfg, tmp_path / "run.h5", progress=False)
    ds = xr.open_dataset(path, engine="h5netcdf")
    assert {"level", "layer", "bin", "eval"} <= set(ds.dims)
    assert ds.sizes["level"] == 4 and list(ds.layer.values) == ["fc1", "fc2", "fc3"]
    assert ds.density.dims == ("level",) and "density" in ds.coords
    assert ds.iteration.dims == ("eval",) and list(ds.iteration.values) == [0, 20, 40, 60]
    np.testing.assert_allclose(ds.density, [1, 0.7, 0.49, 0.343], atol=2e-3)
    assert ds.test_acc.attrs["long_name"] and ds.attrs["rgnet_schema"] == 2
    assert ds.attrs["run_id"] == normalise(small_cfg).run_id  # task defaults filled in
    assert ds.attrs["config"] == normalise(small_cfg).to_json()
    assert int(ds.attrs["levels_complete"]) == 4
    # the theory is consistent with the masks
    np.testing.assert_array_equal(ds.hist.sum("bin") , ds.layer_count)
    masks, trained = rgnet.open_tensors(path, "mask"), rgnet.open_tensors(path, "trained")
    for layer in ds.layer.values:
        m = masks[layer].values.astype(bool)
        w = trained[f"{layer}.weight"].values
        assert (w[~m] == 0).all(), "pruned weights must be exactly zero in the stored trained tensors"
        assert not (m[1:] & ~m[:-1]).any(), "masks only shrink"
        np.testing.assert_array_equal(m.reshape(len(m), -1).sum(1), ds.layer_count.sel(layer=layer))


def test_same_config_same_numbers(tmp_path, small_cfg):
    a = rgnet.record(small_cfg, tmp_path / "a.h5", progress=False)
    b = rgnet.record(small_cfg, tmp_path / "b.h5", progress=False)
    _assert_same_run(a, b)
    other = rgnet.record(small_cfg.replace(seed=1), tmp_path / "c.h5", progress=False)
    assert not np.array_equal(rgnet.open_run(a).val_loss, rgnet.open_run(other).val_loss)


def test_late_rewinding_and_target_density(tmp_path, small_cfg):
    cfg = small_cfg.replace(prune={"rewind": 20, "levels": 10, "target_density": 0.45})
    ds = rgnet.open_run(rgnet.record(cfg, tmp_path / "r.h5", progress=False))
    assert ds.sizes["level"] == 4 and float(ds.density[-1]) <= 0.45 < float(ds.density[-2])
    assert np.isnan(ds.curve_val_loss.isel(level=1, eval=0)) and not np.isnan(ds.curve_val_loss.isel(level=0, eval=0))
    rewind, init = (rgnet.open_tensors(ds.encoding["source"], kind) for kind in ("rewind", "init"))
    assert not np.array_equal(rewind["fc1.weight"], init["fc1.weight"])


def test_completed_run_is_not_retrained(tmp_path, small_cfg):
    path = rgnet.record(small_cfg, tmp_path / "run.h5", progress=False)
    before = path.stat().st_mtime_ns
    rgnet.record(small_cfg, path, progress=False)
    assert path.stat().st_mtime_ns == before


def _worker(cfg, path):
    code = "import sys, rgnet; rgnet.record(rgnet.RunConfig.from_json(sys.argv[1]), sys.argv[2], progress=False)"
    return subprocess.Popen([sys.executable, "-c", code, cfg.to_json(), str(path)])


def _wait_for_level(path, proc, n, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        a = _attrs(path) if path.exists() else None
        if a and a["levels_complete"] >= n:
            return
        assert proc.poll() is None, "worker ended early"
        time.sleep(0.02)
    raise AssertionError("worker too slow")


@pytest.mark.slow   # default suite under 3 minutes; .ci/run runs it
def test_resume_after_sigkill_equals_uninterrupted(tmp_path, small_cfg):
    cfg = small_cfg.replace(train={"steps": 1200, "eval_every": 300})
    ref = rgnet.record(cfg, tmp_path / "ref.h5", progress=False)
    path = tmp_path / "killed.h5"
    proc = _worker(cfg, path)
    _wait_for_level(path, proc, 1)
    time.sleep(0.15)  # into level 1
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n = _attrs(path)["levels_complete"]
    assert 1 <= n < 4, n
    assert rgnet.open_run(path).sizes["level"] == n
    rgnet.record(cfg, path, progress=False)
    _assert_same_run(ref, path)
    assert not list(tmp_path.glob("*.partial"))


def test_ctrl_c_leaves_valid_file_and_resumes(tmp_path, small_cfg):
    cfg = small_cfg.replace(train={"steps": 1200, "eval_every": 300})
    toml = tmp_path / "run.toml"
    toml.write_text('seed = 0\n[model]\nname = "mlp"\n[model.params]\nwidths = [32, 32]\n'
                    '[train]\nsteps = 1200\neval_every = 300\nbatch_size = 50\nlr = 3e-3\n'
                    '[prune]\nlevels = 3\nfraction = 0.3\n[store]\nbins = 16\n')
    assert rgnet.load_toml(toml) == cfg
    path = tmp_path / "int.h5"
    # a shell's background jobs inherit SIGINT as ignored, and Python then installs no KeyboardInterrupt
    # handler: restore the default so that the test means the same under CI runners and `cmd &`
    proc = subprocess.Popen([sys.executable, "-m", "rgnet.cli", "record", "--config", str(toml), "--out", str(path),
                             "--quiet"], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_for_level(path, proc, 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "resume" in err and "Traceback" not in err
    n = _attrs(path)["levels_complete"]
    assert 1 <= n <= 4
    with h5py.File(path, "r") as f:
        density = f["density"][...]  # the level dim has its planned size; later levels are not written yet
    assert np.isfinite(density[:n]).all() and np.isnan(density[n:]).all()
    rgnet.record(cfg, path, progress=False)
    assert rgnet.open_run(path).sizes["level"] == 4


def test_open_runs_stacks_runs_lazily(tmp_path, small_cfg):
    for seed in (0, 1):
        rgnet.record(small_cfg.replace(seed=seed), tmp_path / f"s{seed}.h5", progress=False)
    rgnet.record(small_cfg.replace(prune={"levels": 2}, task={"params": {"corr_noise_scale": 0.5}}),
                 tmp_path / "noisy.h5", progress=False)
    ds = rgnet.open_runs(tmp_path / "*.h5")
    assert ds.sizes["run"] == 3 and ds.sizes["level"] == 4
    assert ds.test_acc.chunks is not None, "open_runs must be lazy (dask)"
    assert sorted(ds.seed.values.tolist()) == [0, 0, 1]
    assert set(ds.task.values) == {"mnist1d", "mnist1d(corr_noise_scale=0.5)"}  # the task key of verdicts
    noisy = ds.where(ds.task_corr_noise_scale == 0.5, drop=True)
    assert noisy.sizes["run"] == 1 and np.isnan(noisy.test_acc.isel(level=3)).all()
    by_seed = ds.swap_dims(run="run_id")
    assert by_seed.sizes["run_id"] == 3
    assert len({ds.run_id.values[i] for i in range(3)}) == 3


def test_each_committed_level_reaches_the_sink(tmp_path, small_cfg, one_thread):
    """The level loop reports every level it commits (trunk and branches) to a sink passed in."""
    from rgnet.imp.branches import open_trunk, reinit, run_branches

    seen = []
    path = rgnet.record(small_cfg, tmp_path / "r.h5", progress=False,
                        sink=lambda p, level, rec, group: seen.append((p, level, group, rec["test_acc"])))
    ds = rgnet.open_run(path)
    assert [(lv, g) for _, lv, g, _ in seen] == [(lv, None) for lv in range(ds.sizes["level"])]
    assert [acc for *_, acc in seen] == ds.test_acc.values.tolist() and all(p == path for p, *_ in seen)
    seen.clear()
    trunk = open_trunk(path)
    run_branches(trunk, [reinit(trunk)], [1, 2], progress=False,
                 sink=lambda p, level, rec, group: seen.append((level, group)))
    assert sorted(seen) == [(1, "branches/reinit"), (2, "branches/reinit")]
