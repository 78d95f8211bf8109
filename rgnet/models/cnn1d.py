"""``cnn1d``: the small 1-D CNN of the MNIST-1D paper (Greydanus & Kobak); 5,210 parameters on 40 inputs."""

from __future__ import annotations

from torch import nn

from rgnet.errors import ConfigError
from rgnet.models.registry import register


def _out_len(n: int, kernel: int, stride: int = 2, padding: int = 1) -> int:
    return (n + 2 * padding - kernel) // stride + 1


class CNN1d(nn.Module):
    """Three Conv1d+ReLU layers (stride 2, padding 1) then a Linear classifier: ``conv1, conv2, conv3, fc``.

    Inputs of shape ``(N, L)`` or ``(N, 1, L)`` are viewed as one-channel signals of length ``L``.
    As in the reference ``ConvBase``, the first kernel is ``kernel`` (5) wide and the next two are 3 wide.
    """

    def __init__(self, length: int, n_classes: int, channels: int = 25, kernel: int = 5):
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, kernel, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        n = _out_len(_out_len(_out_len(length, kernel), 3), 3)
        if n < 1:
            raise ConfigError(f"cnn1d needs longer inputs than {length} for a first kernel of {kernel}")
        self.fc = nn.Linear(channels * n, n_classes)
        self.relu = nn.ReLU()

    def forward(self, x):
        h = x.reshape(x.shape[0], 1, x.shape[-1])
        h = self.relu(self.conv1(h))
        h = self.relu(self.conv2(h))
        h = self.relu(self.conv3(h))
        return self.fc(h.flatten(1))


@register("cnn1d", doc="cnn1d(channels=25, kernel=5): MNIST-1D CNN; kernel is the first layer's width; "
                       "input (L,) or (1, L)")
def cnn1d(in_shape, n_classes, channels=25, kernel=5):
    if len(in_shape) not in (1, 2) or (len(in_shape) == 2 and in_shape[0] != 1):
        raise ConfigError(f"cnn1d needs inputs of shape (L,) or (1, L), not {tuple(in_shape)}")
    return CNN1d(in_shape[-1], n_classes, int(channels), int(kernel))
