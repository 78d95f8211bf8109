"""Baselines as branches: layout next to the trunk, the masks they train, resume, refusal of a changed branch."""

import numpy as np
import pytest
from conftest import record_interrupted, small_config, tensors

import rgnet
from rgnet.engine.seeds import generator
from rgnet.errors import ConfigError, StoreError
from rgnet.imp.branches import open_trunk, random_masks, reinit, run_baselines, run_branch
from rgnet.imp.names import parse_levels


@pytest.fixture(scope="module")
def run_with_baselines(tmp_path_factory):
    path = rgnet.record(small_config(), tmp_path_factory.mktemp("b") / "run.h5", progress=False)
    groups = run_baselines(path, levels=[1, 2, 3], progress=False)
    return path, groups


def _masks(path, group):
    return {n: m.astype(bool) for n, m in tensors(path, "mask", group).items()}


def test_branches_open_as_a_datatree_next_to_the_trunk(run_with_baselines):
    path, groups = run_with_baselines
    assert groups == ["branches/reinit", "branches/random_prune_layerwise", "branches/random_prune_global",
                      "branches/rewind_2"]
    tree = rgnet.open_tree(path)
    for g in groups:
        node = tree[g]
        assert node.sizes["level"] == tree.sizes["level"] == 4
        assert list(node.dataset.layer.values) == list(tree.layer.values)
        assert np.isnan(node.test_acc.values[0]) and not np.isnan(node.test_acc.values[1:]).any()
        assert list(node.level_done.values) == [0, 1, 1, 1]
        assert "long_name" in node.test_acc.attrs
    # level-by-level comparison with plain xarray arithmetic
    diff = tree["branches/reinit"].test_acc - tree.test_acc
    assert diff.dims == ("level",) and np.isfinite(diff.values[1:]).all()
    ds = rgnet.open_run(path, group="branches/reinit")  # only the trained levels
    assert list(ds.level.values) == [1, 2, 3]
    assert rgnet.config_of(ds)["seed"] == 0


def test_baseline_masks_keep_the_tickets_counts(run_with_baselines):
    path, _ = run_with_baselines
    trunk = _masks(path, "")
    layerwise = _masks(path, "branches/random_prune_layerwise")
    global_ = _masks(path, "branches/random_prune_global")
    reinit_m = _masks(path, "branches/reinit")
    for level in (1, 2, 3):
        for n in trunk:
            assert layerwise[n][level].sum() == trunk[n][level].sum()
            np.testing.assert_array_equal(reinit_m[n][level], trunk[n][level])
        assert sum(global_[n][level].sum() for n in trunk) == sum(trunk[n][level].sum() for n in trunk)
        assert any((layerwise[n][level] != trunk[n][level]).any() for n in trunk), "random, not the ticket"
    ds = rgnet.open_run(path)
    for name in ("random_prune_layerwise", "random_prune_global", "reinit", "rewind_2"):
        b = rgnet.open_run(path, group=f"branches/{name}")
        np.testing.assert_allclose(b.density.values, ds.density.values[1:])


def test_reinit_starts_from_fresh_weights_and_rewind_from_the_replayed_point(run_with_baselines):
    path, _ = run_with_baselines
    trunk_init = rgnet.open_tensors(path, "init")
    fresh = rgnet.open_tensors(path, "rewind", "branches/reinit")
    assert not np.allclose(trunk_init["fc1.weight"], fresh["fc1.weight"])
    assert np.isclose(float(trunk_init["fc1.weight"].std()), float(fresh["fc1.weight"].std()), rtol=0.1)
    # rewind_2 replays the trunk's dense training for 2 steps: not the init, close to it
    point = rgnet.open_tensors(path, "rewind", "branches/rewind_2")
    delta = float(abs(point["fc1.weight"] - trunk_init["fc1.weight"]).max())
    assert 0 < delta < 0.1


def test_rerun_skips_done_levels_and_refuses_a_changed_branch(run_with_baselines, tmp_path):
    path, _ = run_with_baselines
    before = path.read_bytes()
    run_baselines(path, ["reinit"], levels=[2, 3], progress=False)
    assert path.read_bytes() == before, "nothing to do must not touch the file"
    trunk = open_trunk(path)
    changed = reinit(trunk)
    changed.spec = {"kind": "reinit", "other": 1}
    with pytest.raises(StoreError, match="already has a branch"):
        run_branch(trunk, changed, [1], progress=False)
    assert path.read_bytes() == before


def test_trunk_levels_recorded_later_extend_every_branch(tmp_path, small_cfg, monkeypatch):
    path = tmp_path / "grow.h5"
    record_interrupted(small_cfg, path, monkeypatch, stop_at=2)
    run_baselines(path, ["reinit"], levels=[1], progress=False)  # a branch of the interrupted trunk
    assert rgnet.open_tree(path)["branches/reinit"].sizes["level"] == 2
    rgnet.record(small_cfg, path, progress=False)  # the trunk resumes; the branch sees every level
    tree = rgnet.open_tree(path)
    assert tree.sizes["level"] == 4 and tree["branches/reinit"].sizes["level"] == 4
    assert list(tree["branches/reinit"].level_done.values) == [0, 1, 0, 0]


def test_branches_without_tensors_keep_summaries_only(tmp_path, small_cfg):
    path = rgnet.record(small_cfg, tmp_path / "run.h5", progress=False)
    run_baselines(path, ["random_prune_layerwise"], [1, 3], tensors=False, progress=False)
    tree = rgnet.open_tree(path)
    b = tree["branches/random_prune_layerwise"]
    assert "tensors" not in b.children and list(b.level_done.values) == [0, 1, 0, 1]
    assert np.isfinite(b.test_acc.values[[1, 3]]).all()


def test_bad_levels_and_kinds_are_clear_errors(run_with_baselines):
    path, _ = run_with_baselines
    with pytest.raises(ConfigError, match="not complete"):
        run_baselines(path, ["reinit"], levels=[7], progress=False)
    with pytest.raises(ConfigError, match="valid baselines"):
        run_baselines(path, ["shuffle"], progress=False)
    with pytest.raises(ConfigError, match="look like"):
        parse_levels("1-x")
    assert parse_levels("1,3,5-7") == [1, 3, 5, 6, 7]


def test_random_masks_counts():
    ref = {"a": np.zeros((10, 10), bool), "b": np.ones((5, 4), bool)}
    ref["a"][:3] = True
    lw = random_masks(ref, "layerwise", generator(0, "t"))
    assert lw["a"].sum() == 30 and lw["b"].sum() == 20
    gl = random_masks(ref, "global", generator(0, "t"))
    assert gl["a"].sum() + gl["b"].sum() == 50 and gl["a"].shape == (10, 10)
