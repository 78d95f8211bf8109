"""Model zoo: shapes, parameter counts against the reference implementations, and what IMP may prune."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rgnet.config import ModelConfig
from rgnet.errors import ConfigError
from rgnet.models import MODELS, build_model, output_layer, prunable_layers

pytestmark = pytest.mark.usefixtures("one_thread")


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


SHAPES = {"mlp": (40,), "lenet_300_100": (1, 28, 28), "cnn1d": (40,),
          "conv2": (3, 8, 8), "conv4": (3, 8, 8), "conv6": (3, 8, 8),
          "resnet20": (3, 8, 8), "resnet32": (3, 8, 8), "resnet44": (3, 8, 8), "resnet56": (3, 8, 8)}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_models_build_and_forward(name):
    model = build_model(ModelConfig(name), SHAPES[name], 7)
    out = model(torch.randn(3, *SHAPES[name]))
    assert out.shape == (3, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_every_registered_model_is_covered():
    """Every model in the registry is built and run by test_models_build_and_forward."""
    assert set(MODELS) <= set(SHAPES)


def test_cnn1d_matches_mnist1d_reference():
    model = build_model(ModelConfig("cnn1d"), (40,), 10)
    assert n_params(model) == 5210     # ConvBase of the MNIST-1D paper: convs 5, 3, 3 wide, linear 125 -> 10
    assert list(prunable_layers(model, ModelConfig("cnn1d"))) == ["conv1", "conv2", "conv3", "fc"]
    x = torch.randn(4, 40)
    torch.testing.assert_close(model(x), model(x[:, None]))          # (L,) and (1, L) inputs agree
    assert build_model(ModelConfig("cnn1d", {"channels": 8}), (1, 40), 10).conv1.out_channels == 8
    with pytest.raises(ConfigError, match=r"\(L,\) or \(1, L\)"):
        build_model(ModelConfig("cnn1d"), (3, 40), 10)


def test_resnet_parameter_counts_match_open_lth():
    assert n_params(build_model(ModelConfig("resnet20"), (3, 32, 32), 10)) == 272_474
    assert n_params(build_model(ModelConfig("resnet56"), (3, 32, 32), 10)) == 855_770
    assert n_params(build_model(ModelConfig("resnet20", {"width": 8}), (3, 32, 32), 10)) < 272_474 / 3


@pytest.mark.parametrize("name,expected", [("conv2", 4_301_642), ("conv4", 2_425_930), ("conv6", 2_262_602)])
def test_conv_parameter_counts(name, expected):
    model = build_model(ModelConfig(name), (3, 32, 32), 10)
    assert n_params(model) == expected
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    fcs = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) == int(name[-1]) and [m.out_features for m in fcs] == [256, 256, 10]


def test_conv_nets_reject_too_small_images():
    with pytest.raises(ConfigError, match="too small"):
        build_model(ModelConfig("conv6"), (3, 4, 4), 10)
    with pytest.raises(ConfigError, match=r"\(C, H, W\)"):
        build_model(ModelConfig("conv2"), (784,), 10)


def test_prunable_layers_defaults_and_overrides():
    net = build_model(ModelConfig("resnet20"), (3, 8, 8), 10)
    layers = list(prunable_layers(net, ModelConfig("resnet20")))
    assert output_layer(net) == "fc" and "fc" not in layers          # open_lth leaves fc unpruned
    assert layers[0] == "conv" and len(layers) == 1 + 18 + 2        # stem, 9 blocks x 2, 2 shortcuts
    assert "blocks.3.shortcut.0" in layers
    assert list(prunable_layers(net, ModelConfig("resnet20", prune_output=True)))[-1] == "fc"
    assert next(iter(prunable_layers(net, ModelConfig("resnet20", prune_first=False)))) == "blocks.0.conv1"

    conv = build_model(ModelConfig("conv4"), (3, 8, 8), 10)
    assert list(prunable_layers(conv, ModelConfig("conv4"))) == [
        "conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "fc3"]
    assert next(iter(prunable_layers(conv, ModelConfig("conv4", prune_first=False)))) == "conv2"
    assert list(prunable_layers(conv, ModelConfig("conv4", prune_output=False)))[-1] == "fc2"


def test_kaiming_init_and_batchnorm():
    torch.manual_seed(0)
    conv = build_model(ModelConfig("conv2"), (3, 32, 32), 10)
    w = conv.fc1.weight
    assert abs(w.std().item() - (2 / w.shape[1]) ** 0.5) < 0.02 * (2 / w.shape[1]) ** 0.5
    assert all(m.bias.abs().max() == 0 for m in conv.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    net = build_model(ModelConfig("resnet20"), (3, 8, 8), 10)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all((m.weight == 1).all() and (m.bias == 0).all() for m in bns)
    net = build_model(ModelConfig("resnet20", {"bn_init": "uniform"}), (3, 8, 8), 10)
    ws = torch.cat([m.weight for m in net.modules() if isinstance(m, nn.BatchNorm2d)])
    assert 0 <= ws.min() and ws.max() < 1 and ws.std() > 0.1
    with pytest.raises(ConfigError, match="bn_init"):
        build_model(ModelConfig("resnet20", {"bn_init": "zeros"}), (3, 8, 8), 10)


@pytest.mark.parametrize("name", ["cnn1d", "conv2", "resnet20"])
def test_builders_do_not_seed(name):
    """The caller seeds torch: same seed, same weights; no reseeding inside the builder."""
    torch.manual_seed(3)
    a = build_model(ModelConfig(name), SHAPES[name], 10)
    b = build_model(ModelConfig(name), SHAPES[name], 10)
    torch.manual_seed(3)
    c = build_model(ModelConfig(name), SHAPES[name], 10)
    first = next(iter(a.parameters()))
    assert not torch.equal(first, next(iter(b.parameters())))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


def test_bad_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="bad parameters"):
        build_model(ModelConfig("resnet20", {"depth": 3}), (3, 8, 8), 10)
    with pytest.raises(ConfigError, match="bad parameters"):
        build_model(ModelConfig("conv2", {"widths": [1]}), (3, 8, 8), 10)
