import numpy as np
import pytest
import torch

from rgnet import ModelConfig, PruneConfig
from rgnet.config import TrainConfig
from rgnet.engine.loop import DeviceData, train_level
from rgnet.engine.masks import Masker, density, full_masks, magnitude_prune, prune_count
from rgnet.engine.seeds import stream_seed
from rgnet.errors import ConfigError
from rgnet.models import build_model, output_layer, prunable_layers
from rgnet.tasks import Task


def _lenet():
    torch.manual_seed(0)
    cfg = ModelConfig("lenet_300_100")
    model = build_model(cfg, (784,), 10)
    return model, prunable_layers(model, cfg), output_layer(model)


def test_frankle_carbin_layerwise_ladder():
    """Layer-wise 20 %, output layer 10 %: the published percentages at levels 3, 7, 12, 15, 18."""
    model, layers, out = _lenet()
    cfg = PruneConfig(scope="layerwise", fraction=0.2, output_fraction=0.1)
    masks = full_masks(layers)
    ladder = [100 * density(masks)]
    for _ in range(18):
        masks = magnitude_prune({n: w.detach() for n, w in layers.items()}, masks, out, cfg)
        ladder.append(100 * density(masks))
    got = [round(ladder[i], 1) for i in (3, 7, 12, 15, 18)]
    assert got == [51.3, 21.1, 7.0, 3.6, 1.9]
    assert [round(x, 1) for x in ladder[:3]] == [100.0, 80.0, 64.1]


def test_counts_exact_and_masks_only_shrink():
    model, layers, out = _lenet()
    weights = {n: w.detach() for n, w in layers.items()}
    for scope in ("global", "layerwise"):
        cfg = PruneConfig(scope=scope, fraction=0.2)
        masks = full_masks(layers)
        for _ in range(5):
            # fresh random weights each level, so that masks shrinking is a property of the rule
            weights = {n: torch.randn_like(w) for n, w in weights.items()}
            new = magnitude_prune(weights, masks, out, cfg)
            for n in masks:
                assert not (new[n] & ~masks[n]).any(), "a pruned weight came back"
            if scope == "layerwise":
                for n in masks:
                    alive = int(masks[n].sum())
                    assert int(new[n].sum()) == alive - prune_count(alive, 0.2)
            else:
                alive = sum(int(m.sum()) for m in masks.values())
                assert sum(int(m.sum()) for m in new.values()) == alive - prune_count(alive, 0.2)
            masks = new


def test_pruning_by_magnitude_not_sign():
    """Large negative weights survive; the smallest |w| go (the classic `< eps` bug would keep them wrong)."""
    w = {"a": torch.tensor([[-5.0, 0.1, -0.2, 3.0, -0.05, 1.0]])}
    m = magnitude_prune(w, full_masks(w), "a", PruneConfig(scope="layerwise", fraction=0.5))
    assert m["a"].tolist() == [[True, False, False, True, False, True]]


def test_global_pruning_prefers_small_layers_weights():
    w = {"a": torch.full((10,), 0.1), "b": torch.full((10,), 1.0)}
    m = magnitude_prune(w, full_masks(w), "b", PruneConfig(scope="global", fraction=0.5))
    assert int(m["a"].sum()) == 0 and int(m["b"].sum()) == 10


def test_unknown_layer_fraction_is_an_error():
    w = {"a": torch.ones(4)}
    with pytest.raises(ConfigError, match="unknown layer"):
        magnitude_prune(w, full_masks(w), "a", PruneConfig(layer_fractions={"zz": 0.1}))


def test_pruned_weights_exactly_zero_after_every_step():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    task = Task("toy", x[:200], y[:200], x[200:250], y[200:250], x[250:], y[250:], n_classes=2)
    torch.manual_seed(0)
    model = build_model(ModelConfig("mlp", {"widths": [16]}), (8,), 2)
    layers = prunable_layers(model, ModelConfig("mlp"))
    masks = {n: torch.rand_like(w) > 0.5 for n, w in layers.items()}
    seen = []

    class Checking(Masker):
        def apply(self):
            super().apply()
            seen.append(max(float(w.detach()[~m].abs().max()) for w, m in zip(self.weights, self.masks.values())))

    for opt in ("adam", "sgd"):
        cfg = TrainConfig(optimizer=opt, steps=30, eval_every=10, batch_size=20, lr=0.1, weight_decay=1e-3)
        train_level(model, Checking(layers, masks), DeviceData.from_task(task, torch.device("cpu")), cfg,
                    stream_seed(0, "data", 0, "trunk"))
    assert len(seen) >= 60
    assert max(seen) == 0.0
    # and the surviving weights did train
    assert all(float(w.detach()[m].abs().sum()) > 0 for w, m in zip(layers.values(), masks.values()))
