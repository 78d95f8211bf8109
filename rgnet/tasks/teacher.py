"""Teacher-student classification: inputs are Gaussian, labels come from a random (sparse) teacher MLP.

A controllable synthetic family: the same ``input_dim`` as MNIST-1D (40) lets a ticket move between them.
"""

from __future__ import annotations

import numpy as np

from rgnet.tasks.registry import Task, non_negative, positive, register

DEFAULTS = {"input_dim": 40, "classes": 10, "width": 64, "sparsity": 0.0, "n_train": 4000,
            "n_val": 500, "n_test": 1000, "seed": 0}


RANGES = {"input_dim": (positive, ">= 1"), "classes": (lambda v: v >= 2, ">= 2"), "width": (positive, ">= 1"),
          "sparsity": (lambda v: 0 <= v < 1, "in [0, 1)"), "n_train": (positive, ">= 1"),
          "n_val": (positive, ">= 1"), "n_test": (positive, ">= 1"), "seed": (non_negative, ">= 0")}


@register("teacher", DEFAULTS, doc="labels = argmax of a random one-hidden-layer teacher (input_dim, "
          "classes, width, sparsity = fraction of teacher weights set to zero, sizes, seed)", ranges=RANGES)
def load_teacher(data_root=None, *, input_dim, classes, width, sparsity, n_train, n_val, n_test, seed):
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((input_dim, width)) / np.sqrt(input_dim)
    w2 = rng.standard_normal((width, classes)) / np.sqrt(width)
    for w in (w1, w2):
        w *= rng.random(w.shape) >= sparsity
    n = n_train + n_val + n_test
    x = rng.standard_normal((n, input_dim)).astype(np.float32)
    logits = np.maximum(x @ w1, 0) @ w2
    # centre each class score so that all classes occur (a random teacher is otherwise very unbalanced)
    logits -= logits.mean(0)
    y = logits.argmax(1).astype(np.int64)
    a, b = n_train, n_train + n_val
    return Task("teacher", x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:], n_classes=classes,
                meta={"class_counts": np.bincount(y, minlength=classes).tolist()})
