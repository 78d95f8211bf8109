"""MNIST-1D (Greydanus & Kobak), generated locally with the ``mnist1d`` package: no download.

Every generator parameter is a task parameter, so a *family of similar problems* is declared in config
(``[task.params] corr_noise_scale = 0.5`` ...). The generator's own train/test split is kept; a fixed
validation set is carved out of the training part (``val_size``, ``split_seed``).
"""

from __future__ import annotations

import functools
import json

import numpy as np

from rgnet.tasks import Task, non_negative, positive, register, split_validation

DEFAULTS = {
    "num_samples": 5000, "train_split": 0.8, "template_len": 12, "padding": [36, 60],
    "scale_coeff": 0.4, "max_translation": 48, "corr_noise_scale": 0.25, "iid_noise_scale": 0.02,
    "shear_scale": 0.75, "shuffle_seq": False, "final_seq_length": 40, "seed": 42,
    "val_size": 500, "split_seed": 0,
}


RANGES = {
    "num_samples": (lambda v: v >= 20, ">= 20"), "train_split": (lambda v: 0 < v < 1, "in (0, 1)"),
    "template_len": (positive, ">= 1"), "padding": (lambda v: len(v) == 2 and 0 <= v[0] <= v[1], "[low, high] "
                                                    "with 0 <= low <= high"),
    "scale_coeff": (non_negative, ">= 0"), "max_translation": (non_negative, ">= 0"),
    "corr_noise_scale": (non_negative, ">= 0"), "iid_noise_scale": (non_negative, ">= 0"),
    "shear_scale": (non_negative, ">= 0"), "final_seq_length": (positive, ">= 1"),
    "seed": (lambda v: 0 <= v < 2**32, "in [0, 2**32)"), "val_size": (positive, ">= 1"),
    "split_seed": (non_negative, ">= 0"),
}


@register("mnist1d", DEFAULTS, doc="MNIST-1D generated locally; parameters are mnist1d's generator "
          "arguments plus val_size and split_seed", ranges=RANGES)
def load_mnist1d(data_root=None, **params) -> Task:
    key = json.dumps(params, sort_keys=True)
    x, y, xt, yt = _generate(key)
    xtr, ytr, xv, yv = split_validation(x, y, params["val_size"], params["split_seed"])
    return Task("mnist1d", xtr, ytr, xv, yv, xt.copy(), yt.copy(), n_classes=10,
                meta={"generator": "mnist1d.data.make_dataset"})


@functools.lru_cache(maxsize=16)
def _generate(key: str):
    from mnist1d.data import get_dataset_args, make_dataset

    p = json.loads(key)
    args = get_dataset_args()
    for k, v in p.items():
        if k not in ("val_size", "split_seed"):
            setattr(args, k, v)
    # make_dataset seeds numpy's global RNG; keep the caller's global stream untouched.
    state = np.random.get_state()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state)
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    i64 = lambda a: np.asarray(a, dtype=np.int64)  # noqa: E731
    out = f32(d["x"]), i64(d["y"]), f32(d["x_test"]), i64(d["y_test"])
    for a in out:
        a.flags.writeable = False  # cached: callers must copy before writing
    return out
