"""``conv2``, ``conv4``, ``conv6``: the VGG-like CIFAR-10 networks of Frankle & Carbin (2019).

Pairs of 3x3 "same" convolutions (64, 64 | 128, 128 | 256, 256) each followed by 2x2 max-pooling, then fully
connected layers of 256 and 256 units and the classifier; ReLU throughout. Weights are Kaiming-normal and
biases zero, as in open_lth. On 32x32x3 inputs they have about 4.30M, 2.43M and 2.26M parameters.
"""

from __future__ import annotations

import itertools

from torch import nn

from rgnet.errors import ConfigError
from rgnet.models.registry import register

PLANS = {"conv2": (64,), "conv4": (64, 128), "conv6": (64, 128, 256)}   # widths of the conv pairs


def kaiming_init(model: nn.Module) -> nn.Module:
    """open_lth's ``kaiming_normal`` initialiser, plus zero biases and unit/zero BatchNorm affine."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


class ConvNet(nn.Sequential):
    """Conv-2/4/6. Layers are ``conv1 .. conv{2k}``, then ``fc1``, ``fc2``, ``fc3`` (the classifier)."""

    def __init__(self, in_shape: tuple[int, ...], plan: tuple[int, ...], n_classes: int,
                 hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        if len(in_shape) != 3:
            raise ConfigError(f"conv nets need image inputs of shape (C, H, W), not {tuple(in_shape)}")
        c, h, w = in_shape
        i = 0
        for width in plan:
            for _ in range(2):
                i += 1
                self.add_module(f"conv{i}", nn.Conv2d(c, width, 3, padding=1))
                self.add_module(f"relu{i}", nn.ReLU())
                c = width
            self.add_module(f"pool{i // 2}", nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        if h < 1 or w < 1:
            raise ConfigError(f"images of shape {tuple(in_shape)} are too small for {len(plan)} max-pools")
        self.add_module("flatten", nn.Flatten())
        sizes = [c * h * w, *hidden]
        for j, (a, b) in enumerate(itertools.pairwise(sizes), start=1):
            self.add_module(f"fc{j}", nn.Linear(a, b))
            self.add_module(f"fc_relu{j}", nn.ReLU())
        self.add_module(f"fc{len(sizes)}", nn.Linear(sizes[-1], n_classes))
        kaiming_init(self)


def _register(name: str, plan: tuple[int, ...]):
    n = 2 * len(plan)

    @register(name, doc=f"Conv-{n} (Frankle & Carbin): {n} 3x3 conv layers of widths "
                        f"{', '.join(str(p) for p in plan for _ in range(2))}, max-pool after each pair, "
                        f"fc 256, 256; input (C, H, W)")
    def build(in_shape, n_classes):
        return ConvNet(tuple(in_shape), plan, n_classes)

    return build


for _name, _plan in PLANS.items():
    _register(_name, _plan)
