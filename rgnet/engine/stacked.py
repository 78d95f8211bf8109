"""K fully connected networks of one architecture as one stacked model: weights ``(K, out, in)``, biases
``(K, out)``, every layer one batched matmul over the K runs.

:class:`StackedLinear` spells out its backward pass so that each run's gradients come from the same
products, in the same operand order, as ``nn.Linear``'s (``grad_W = grad_out^T @ input``): with one CPU thread
a run trained in a stack then gets the same bits as the run trained alone (see ``tests/test_engine.py``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class StackedLinear(torch.autograd.Function):
    """``out[k] = h[k] @ W[k]^T + b[k]`` for every run k, with ``nn.Linear``'s backward products."""

    @staticmethod
    def forward(ctx, h, weight, bias):
        ctx.save_for_backward(h, weight)
        return torch.baddbmm(bias[:, None, :], h, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad):
        h, weight = ctx.saved_tensors
        grad_h = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        return grad_h, torch.bmm(grad.transpose(1, 2), h), grad.sum(1)


def stackable(model: nn.Module) -> bool:
    """Whether ``model`` is a chain of Flatten / Linear (with bias) / ReLU modules (``mlp``, ``lenet_300_100``)."""
    if not isinstance(model, nn.Sequential) or not len(model):
        return False
    for m in model:
        if isinstance(m, nn.Linear) and m.bias is None:
            return False
        if isinstance(m, nn.Flatten) and (m.start_dim, m.end_dim) != (1, -1):
            return False
        if not isinstance(m, (nn.Flatten, nn.Linear, nn.ReLU)):
            return False
    return True


class StackedMLP:
    """The K runs' networks as stacked parameters; ``self(x)`` maps ``(K, B, *in_shape)`` to ``(K, B, classes)``.

    Built from one ``template`` module (the architecture, see :func:`stackable`) and K state dicts of it.
    ``layers`` maps each Linear's name to its stacked weight, in module order, as ``prunable_layers`` names them.
    """

    def __init__(self, template: nn.Module, states: list[dict[str, np.ndarray]], device: torch.device):
        if not stackable(template):
            raise ValueError(f"{type(template).__name__} is not a chain of Flatten/Linear/ReLU modules")
        self.keys = list(template.state_dict())
        self.k = len(states)
        self.ops: list[str | None] = []  # a Linear's name, or None for ReLU (Flatten is the reshape in __call__)
        self.params: dict[str, nn.Parameter] = {}
        for name, m in template.named_children():
            if isinstance(m, nn.Linear):
                self.ops.append(name)
            elif isinstance(m, nn.ReLU):
                self.ops.append(None)
        for key in self.keys:
            stacked = np.stack([s[key] for s in states])
            self.params[key] = nn.Parameter(torch.from_numpy(stacked).to(device))
        self.layers = {n: self.params[f"{n}.weight"] for n in self.ops if n is not None}

    def parameters(self) -> list[nn.Parameter]:
        return list(self.params.values())

    def __call__(self, x: torch.Tensor, runs: slice | None = None) -> torch.Tensor:
        """Logits of every run (or of ``runs`` only, with ``x`` holding their inputs)."""
        h = x.reshape(x.shape[0], x.shape[1], -1)
        for op in self.ops:
            if op is None:  # in place on a layer's output (one allocation less), never on the caller's input
                h = torch.relu(h) if h.data_ptr() == x.data_ptr() else h.relu_()
            else:
                w, b = self.params[f"{op}.weight"], self.params[f"{op}.bias"]
                h = StackedLinear.apply(h, w, b) if runs is None else StackedLinear.apply(h, w[runs], b[runs])
        return h

    def state(self, k: int) -> dict[str, torch.Tensor]:
        """Run ``k``'s parameters as a state dict of views (same keys and order as the template's)."""
        return {key: self.params[key].detach()[k] for key in self.keys}

    def finite(self) -> torch.Tensor:
        """``(K,)`` bool: whether every parameter of each run is finite (no synchronisation)."""
        out = torch.ones(self.k, dtype=torch.bool, device=self.params[self.keys[0]].device)
        for p in self.params.values():
            out &= torch.isfinite(p.detach()).flatten(1).all(1)
        return out
