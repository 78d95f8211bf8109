"""The training loop's pieces: schedule, data order, evaluation points, options through `record`."""

import numpy as np
import pytest
import torch

import rgnet
from rgnet.config import TrainConfig, eval_iterations
from rgnet.engine.loop import batch_indices, lr_at
from rgnet.engine.seeds import epoch_permutation, stream_seed


def test_warmup_and_milestones():
    cfg = TrainConfig(lr=0.1, warmup=10, milestones=(50, 80), gamma=0.1, steps=100)
    assert lr_at(cfg, 1) == pytest.approx(0.01) and lr_at(cfg, 10) == pytest.approx(0.1)
    assert lr_at(cfg, 50) == pytest.approx(0.1) and lr_at(cfg, 51) == pytest.approx(0.01)
    assert lr_at(cfg, 81) == pytest.approx(0.001)


def test_batches_are_epochs_of_a_seeded_permutation():
    idx = batch_indices(100, 30, 0, 7, stream_seed(0, "data", 0, "trunk"))
    assert idx.shape == (7, 30)
    first_epoch = idx[:3].flatten()
    assert len(set(first_epoch.tolist())) == 90  # no repeats within an epoch; the partial batch is dropped
    again = batch_indices(100, 30, 0, 7, stream_seed(0, "data", 0, "trunk"))
    assert torch.equal(idx, again)
    assert not torch.equal(idx, batch_indices(100, 30, 0, 7, stream_seed(0, "data", 1, "trunk")))


def test_a_level_that_starts_at_the_rewind_iteration_draws_its_order_from_its_own_stream():
    """Starting at iteration k (a pruned level after rewinding) the batches of iterations k+1.. are the first
    batches of the level's stream: the order depends on the stream and the number of steps, not on k."""
    late = batch_indices(100, 30, 2, 7, stream_seed(0, "data", 3, "trunk"))
    fresh = batch_indices(100, 30, 0, 7, stream_seed(0, "data", 3, "trunk"))
    assert late.shape == (5, 30) and torch.equal(late, fresh[:5])
    assert not torch.equal(late, fresh[2:])


def test_epoch_order_is_a_fixed_function_of_stream_and_epoch():
    """The data order of every recording depends on these numbers: a change here changes every run."""
    s = stream_seed(0, "data", 0, "trunk")
    p = epoch_permutation(s, 0, 4000)
    assert sorted(p.tolist()) == list(range(4000))
    assert p[:6].tolist() == [2613, 1001, 3644, 3537, 1705, 3556]
    streams = torch.tensor([stream_seed(k, "data", 2, "trunk") for k in range(3)])
    stacked = epoch_permutation(streams, 5, 300)  # K runs at once: row k is run k's order alone
    for k in range(3):
        assert torch.equal(stacked[k], epoch_permutation(int(streams[k]), 5, 300))
    assert not torch.equal(epoch_permutation(s, 1, 300), epoch_permutation(s, 2, 300))


def test_epoch_order_is_uniform():
    """Where one example lands in an epoch is uniform over positions (chi-square over 4000 epochs)."""
    from scipy import stats

    s = stream_seed(3, "data", 0, "trunk")
    where = [int((epoch_permutation(s, e, 20) == 7).nonzero()[0, 0]) for e in range(4000)]
    assert stats.chisquare(np.bincount(where, minlength=20)).pvalue > 1e-3


def test_eval_points_include_the_end():
    assert eval_iterations(TrainConfig(steps=55, eval_every=20)).tolist() == [0, 20, 40, 55]


def test_sgd_layerwise_with_layer_fractions_and_unpruned_first_layer(tmp_path, small_cfg):
    cfg = small_cfg.replace(
        train={"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4, "warmup": 10,
               "milestones": [40]},
        prune={"scope": "layerwise", "fraction": 0.5, "layer_fractions": {"fc3": 0.1}, "levels": 2},
        model={"prune_first": False})
    ds = rgnet.open_run(rgnet.record(cfg, tmp_path / "sgd.h5", progress=False))
    assert list(ds.layer.values) == ["fc2", "fc3"]
    np.testing.assert_allclose(ds.layer_density.sel(layer="fc2"), [1, 0.5, 0.25], atol=1e-3)
    np.testing.assert_allclose(ds.layer_density.sel(layer="fc3"), [1, 0.9, 0.81], atol=2e-3)
    assert np.isfinite(ds.test_acc).all() and float(ds.test_acc[0]) > 0.15


def test_cnn1d_records_with_all_conv_layers_pruned(tmp_path, small_cfg):
    cfg = small_cfg.replace(model={"name": "cnn1d", "params": {}}, prune={"levels": 1})
    ds = rgnet.open_run(rgnet.record(cfg, tmp_path / "cnn.h5", progress=False))
    assert list(ds.layer.values) == ["conv1", "conv2", "conv3", "fc"]
    np.testing.assert_allclose(float(ds.density[1]), 0.7, atol=1e-3)
