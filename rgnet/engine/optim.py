"""Adam and SGD as one fused kernel call per step.

``torch.optim`` spends more time in Python bookkeeping (param groups, profiler hooks, ``zero_grad`` loops)
than in arithmetic for the small models of lottery-ticket studies. :class:`FusedOptimizer` keeps the
gradients allocated, zeroes them with one ``_foreach_zero_`` and updates with the same fused kernels
``torch.optim`` uses (``fused=True``), so the numbers are the same; where those kernels are missing it falls
back to ``torch.optim``.
"""

from __future__ import annotations

import torch

from rgnet.config import TrainConfig
from rgnet.errors import ConfigError

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


class FusedOptimizer:
    """``zero_grad()``, ``step(lr)``; semantics of ``torch.optim.Adam`` / ``SGD(momentum, weight_decay)``."""

    def __init__(self, params, cfg: TrainConfig, per_run: bool = False):
        """``per_run``: the parameters are stacks of K runs (dim 0) and the kernel gets each run's slice as a
        tensor of its own — one call still, but each slice takes the kernel's path (vectorised body, scalar
        tail) it takes when the run trains alone, so a run's updates have the same bits in a stack."""
        if cfg.optimizer not in ("adam", "sgd"):
            raise ConfigError(f"unknown optimizer {cfg.optimizer!r}; valid optimizers are adam, sgd")
        self.cfg = cfg
        self.stacked = [p for p in params if p.requires_grad]
        for p in self.stacked:
            p.grad = torch.zeros_like(p)
        self.grads_stacked = [p.grad for p in self.stacked]

        def split(tensors):  # the lists the kernels get
            return [t[k] for t in tensors for k in range(t.shape[0])] if per_run else list(tensors)

        self.params, self.grads = split([p.detach() for p in self.stacked]), split(self.grads_stacked)
        if cfg.optimizer == "adam":
            self.exp_avg = split([torch.zeros_like(p) for p in self.stacked])
            self.exp_avg_sq = split([torch.zeros_like(p) for p in self.stacked])
            counts = torch.zeros(len(self.params), dtype=torch.float32, device=self.stacked[0].device)
            self.steps = list(counts.unbind())  # views: one _foreach_add_ on ``counts`` counts them all
            self._counts = [counts]
        else:
            self.momentum = split([torch.zeros_like(p) for p in self.stacked])
            self.first = True
        self.fallback = None
        try:
            self.step(0.0)  # probe the kernel with lr = 0 (a no-op on the weights), then reset state
        except (RuntimeError, NotImplementedError, AttributeError):
            self.fallback = _torch_optimizer(self.stacked, cfg)
        self.__init_state()

    def __init_state(self) -> None:
        if self.cfg.optimizer == "adam":
            torch._foreach_zero_(self.exp_avg)
            torch._foreach_zero_(self.exp_avg_sq)
            torch._foreach_zero_(self._counts)
        else:
            torch._foreach_zero_(self.momentum)
            self.first = True

    def zero_grad(self) -> None:
        torch._foreach_zero_(self.grads_stacked)

    def step(self, lr: float) -> None:
        c = self.cfg
        if self.fallback is not None:
            for g in self.fallback.param_groups:
                g["lr"] = lr
            self.fallback.step()
        elif c.optimizer == "adam":
            torch._foreach_add_(self._counts, 1)
            torch._fused_adam_(self.params, self.grads, self.exp_avg, self.exp_avg_sq, [], self.steps, lr=lr,
                               beta1=ADAM_BETAS[0], beta2=ADAM_BETAS[1], weight_decay=c.weight_decay,
                               eps=ADAM_EPS, amsgrad=False, maximize=False)
        else:
            torch._fused_sgd_(self.params, self.grads, self.momentum, weight_decay=c.weight_decay,
                              momentum=c.momentum, lr=lr, dampening=0.0, nesterov=False, maximize=False,
                              is_first_step=self.first)
            self.first = False


def _torch_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=ADAM_BETAS, eps=ADAM_EPS, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
