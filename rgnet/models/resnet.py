"""``resnet20/32/44/56``: CIFAR ResNets of He et al. (2016) as in open_lth's ``cifar_resnet_N``.

A 3x3 conv (``width`` filters) + BN, then three stages of (N - 2) / 6 basic blocks with ``width``,
``2 width`` and ``4 width`` filters (stride 2 at the first block of stages 2 and 3), global average pooling
and a linear classifier ``fc``. A block is conv-BN-ReLU-conv-BN plus a shortcut (identity, or 1x1 conv + BN
where the shape changes), then ReLU. resnet20 with width 16 has 272,474 parameters for 10 classes.

Initialisation: Kaiming-normal conv/linear weights (open_lth's ``kaiming_normal``), zero biases, BN
weight 1 and bias 0 by default; ``bn_init="uniform"`` draws BN weights from U[0, 1) as open_lth's default.
The output layer ``fc`` is not pruned by default (open_lth ignores it).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from rgnet.errors import ConfigError
from rgnet.models.conv import kaiming_init
from rgnet.models.registry import register


class Block(nn.Module):
    """Basic residual block: ``conv1, bn1, conv2, bn2`` and ``shortcut`` (empty or 1x1 conv + BN)."""

    def __init__(self, f_in: int, f_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(f_in, f_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(f_out)
        self.conv2 = nn.Conv2d(f_out, f_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(f_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or f_in != f_out:
            self.shortcut = nn.Sequential(nn.Conv2d(f_in, f_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(f_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-N for small images; layers ``conv``, ``blocks.<i>.conv1/conv2/shortcut.0``, ``fc``."""

    def __init__(self, depth: int, in_channels: int, n_classes: int, width: int = 16, bn_init: str = "ones"):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ConfigError(f"ResNet depth {depth} is not valid; use 6 D + 2 with D >= 1 (20, 32, ...)")
        if bn_init not in ("ones", "uniform"):
            raise ConfigError(f"bn_init={bn_init!r} is not valid; use 'ones' or 'uniform'")
        per_stage = (depth - 2) // 6
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        blocks, f_in = [], width
        for stage, f_out in enumerate((width, 2 * width, 4 * width)):
            for i in range(per_stage):
                blocks.append(Block(f_in, f_out, stride=2 if stage > 0 and i == 0 else 1))
                f_in = f_out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(f_in, n_classes)
        kaiming_init(self)
        if bn_init == "uniform":
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    with torch.no_grad():
                        m.weight.uniform_(0.0, 1.0)

    def forward(self, x):
        out = F.relu(self.bn(self.conv(x)))
        out = self.blocks(out)
        return self.fc(out.mean(dim=(2, 3)))


def _register(depth: int):
    @register(f"resnet{depth}", prune_output=False,
              doc=f"ResNet-{depth} for CIFAR (open_lth cifar_resnet_{depth}); width=16: first-stage filters; "
                  f"bn_init='ones' or 'uniform'; input (C, H, W)")
    def build(in_shape, n_classes, width=16, bn_init="ones"):
        if len(in_shape) != 3:
            raise ConfigError(f"resnet{depth} needs image inputs of shape (C, H, W), not {tuple(in_shape)}")
        return CifarResNet(depth, in_shape[0], n_classes, int(width), bn_init)

    return build


for _depth in (20, 32, 44, 56):
    _register(_depth)
