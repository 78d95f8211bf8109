"""Teacher-student classification: inputs are Gaussian, labels come from a random (sparse) teacher MLP.

A controllable synthetic family: the same ``input_dim`` as MNIST-1D (40) lets a ticket move between them. What
matters to the labels is planted: the teacher reads only ``support`` inputs starting at ``support_offset`` (0: all
of them), and ``input_order_seed`` presents the inputs in a fixed random order (0: as drawn) — a declared input
permutation, so a task that differs only in it is the same task with its inputs permuted.
"""

from __future__ import annotations

import numpy as np

from rgnet.errors import ConfigError
from rgnet.tasks.registry import Task, non_negative, positive, register

DEFAULTS = {"input_dim": 40, "classes": 10, "width": 64, "sparsity": 0.0, "n_train": 4000,
            "n_val": 500, "n_test": 1000, "seed": 0, "support": 0, "support_offset": 0, "input_order_seed": 0}


RANGES = {"input_dim": (positive, ">= 1"), "classes": (lambda v: v >= 2, ">= 2"), "width": (positive, ">= 1"),
          "sparsity": (lambda v: 0 <= v < 1, "in [0, 1)"), "n_train": (positive, ">= 1"),
          "n_val": (positive, ">= 1"), "n_test": (positive, ">= 1"), "seed": (non_negative, ">= 0"),
          "support": (non_negative, ">= 0 (0: every input)"), "support_offset": (non_negative, ">= 0"),
          "input_order_seed": (non_negative, ">= 0 (0: inputs as drawn)")}


def input_order(params: dict) -> np.ndarray:
    """The order the inputs are presented in: ``x = x_drawn[:, order]``."""
    n = params["input_dim"]
    return np.random.default_rng(params["input_order_seed"]).permutation(n) if params["input_order_seed"] else \
        np.arange(n)


@register("teacher", DEFAULTS, doc="labels = argmax of a random one-hidden-layer teacher (input_dim, "
          "classes, width, sparsity = fraction of teacher weights set to zero, sizes, seed; support, "
          "support_offset = the inputs it reads; input_order_seed = a fixed permutation of the inputs)",
          ranges=RANGES, input_permutations={"input_order_seed": input_order})
def load_teacher(data_root=None, *, input_dim, classes, width, sparsity, n_train, n_val, n_test, seed, support,
                 support_offset, input_order_seed):
    if support + support_offset > input_dim or (support == 0 and support_offset):
        raise ConfigError(f"the teacher reads inputs {support_offset}..{support_offset + support - 1}, but there "
                          f"are {input_dim}; lower support or support_offset (support 0 reads every input)")
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((input_dim, width)) / np.sqrt(input_dim)
    w2 = rng.standard_normal((width, classes)) / np.sqrt(width)
    for w in (w1, w2):
        w *= rng.random(w.shape) >= sparsity
    if support:   # the inputs the labels depend on (the draws above do not change: defaults give the same task)
        w1 *= np.isin(np.arange(input_dim), np.arange(support_offset, support_offset + support))[:, None]
    n = n_train + n_val + n_test
    x = rng.standard_normal((n, input_dim)).astype(np.float32)
    logits = np.maximum(x @ w1, 0) @ w2
    # centre each class score so that all classes occur (a random teacher is otherwise very unbalanced)
    logits -= logits.mean(0)
    y = logits.argmax(1).astype(np.int64)
    x = np.ascontiguousarray(x[:, input_order({"input_dim": input_dim, "input_order_seed": input_order_seed})])
    a, b = n_train, n_train + n_val
    return Task("teacher", x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:], n_classes=classes,
                meta={"class_counts": np.bincount(y, minlength=classes).tolist()})
