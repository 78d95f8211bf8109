"""Fully connected networks: ``mlp`` with any widths, ``lenet_300_100`` (Frankle & Carbin)."""

from __future__ import annotations

import math

from torch import nn

from rgnet.models.registry import register


class MLP(nn.Sequential):
    """Flatten, then Linear+ReLU per hidden width, then a Linear classifier. Layers are fc1, fc2, ..."""

    def __init__(self, in_features: int, widths: list[int], n_classes: int):
        super().__init__()
        self.add_module("flatten", nn.Flatten())
        sizes = [in_features, *widths]
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            self.add_module(f"fc{i}", nn.Linear(a, b))
            self.add_module(f"relu{i}", nn.ReLU())
        self.add_module(f"fc{len(sizes)}", nn.Linear(sizes[-1], n_classes))


@register("mlp", doc="mlp(widths=[100, 100]): hidden layer widths")
def mlp(in_shape, n_classes, widths=(100, 100)):
    return MLP(math.prod(in_shape), [int(w) for w in widths], n_classes)


@register("lenet_300_100", doc="LeNet-300-100 (Frankle & Carbin): mlp with widths [300, 100]")
def lenet_300_100(in_shape, n_classes):
    return MLP(math.prod(in_shape), [300, 100], n_classes)
