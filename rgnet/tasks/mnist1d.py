"""MNIST-1D (Greydanus & Kobak), generated locally with the ``mnist1d`` package: no download.

Every generator parameter is a task parameter, so a *family of similar problems* is declared in config
(``[task.params] corr_noise_scale = 0.5`` ...). Train and test are the generator's published split (4,000 /
1,000 by default, exactly what ``mnist1d.data.make_dataset`` returns). The validation set is *extra* data
from the same generator: ``val_size`` more examples drawn with the generator seed ``seed + VAL_SEED_OFFSET``,
put through the published set's feature permutation (``shuffle_seq``) and standardisation, so training keeps
every published training example and the test set stays untouched.

``swaps`` (rgnet's, not the generator's) exchanges that many disjoint pairs of input positions after the
generator's own ``shuffle_seq``: a graded rearrangement of which inputs carry what, from none (0) to every
position moved (half the sequence length). The pairs are a fixed random pairing (``swap_seed``), the first
``swaps`` of it, so that tasks with more swaps contain those with fewer: ``|swaps_a - swaps_b|`` pairs apart.
"""

from __future__ import annotations

import functools
import json
import random

import numpy as np

from rgnet.errors import ConfigError
from rgnet.tasks.registry import Task, non_negative, positive, register

VAL_SEED_OFFSET = 10_000   # generator seed of the validation examples: seed + this

DEFAULTS = {
    "num_samples": 5000, "train_split": 0.8, "template_len": 12, "padding": [36, 60],
    "scale_coeff": 0.4, "max_translation": 48, "corr_noise_scale": 0.25, "iid_noise_scale": 0.02,
    "shear_scale": 0.75, "shuffle_seq": False, "final_seq_length": 40, "seed": 42,
    "val_size": 1000, "swaps": 0, "swap_seed": 0,
}
OWN = ("val_size", "swaps", "swap_seed")   # rgnet's parameters, not the generator's


RANGES = {
    "num_samples": (lambda v: v >= 20, ">= 20"), "train_split": (lambda v: 0 < v < 1, "in (0, 1)"),
    "template_len": (positive, ">= 1"), "padding": (lambda v: len(v) == 2 and 0 <= v[0] <= v[1], "[low, high] "
                                                    "with 0 <= low <= high"),
    "scale_coeff": (non_negative, ">= 0"), "max_translation": (non_negative, ">= 0"),
    "corr_noise_scale": (non_negative, ">= 0"), "iid_noise_scale": (non_negative, ">= 0"),
    "shear_scale": (non_negative, ">= 0"), "final_seq_length": (positive, ">= 1"),
    "seed": (lambda v: 0 <= v < 2**32 - VAL_SEED_OFFSET, f"in [0, 2**32 - {VAL_SEED_OFFSET})"),
    "val_size": (positive, ">= 1"), "swaps": (non_negative, ">= 0 (at most half of final_seq_length)"),
    "swap_seed": (non_negative, ">= 0"),
}


def feature_order(params: dict) -> np.ndarray:
    """``shuffle_seq``'s permutation: ``x[:, j] = x_unshuffled[:, order[j]]`` (identity when it is false)."""
    if not params["shuffle_seq"]:
        return np.arange(params["final_seq_length"])
    return _raw(params, params["seed"], params["num_samples"])[2]


def swap_order(params: dict) -> np.ndarray:
    """``swaps``' permutation (an involution): the first ``swaps`` pairs of a fixed random pairing exchanged."""
    n = params["final_seq_length"]
    if 2 * params["swaps"] > n:
        raise ConfigError(f"swaps = {params['swaps']} exchanges more than the {n // 2} disjoint pairs of "
                          f"{n} inputs; lower swaps (at most final_seq_length / 2)")
    pairs = np.random.default_rng(params["swap_seed"]).permutation(n)[: n - n % 2].reshape(-1, 2)
    order = np.arange(n)
    for a, b in pairs[: params["swaps"]]:
        order[a], order[b] = b, a
    return order


@register("mnist1d", DEFAULTS, doc="MNIST-1D generated locally; parameters are mnist1d's generator "
          "arguments plus val_size (extra validation examples from the same generator) and swaps, swap_seed "
          "(disjoint pairs of input positions exchanged)", ranges=RANGES,
          input_permutations={"shuffle_seq": feature_order, "swaps": swap_order})
def load_mnist1d(data_root=None, **params) -> Task:
    x, y, xv, yv, xt, yt = _generate(json.dumps(params, sort_keys=True))
    return Task("mnist1d", x.copy(), y.copy(), xv.copy(), yv.copy(), xt.copy(), yt.copy(), n_classes=10,
                meta={"generator": "mnist1d.data.make_dataset", "val_seed": params["seed"] + VAL_SEED_OFFSET})


@functools.lru_cache(maxsize=16)
def _generate(key: str) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_val, y_val, x_test, y_test) for the parameters in ``key`` (JSON); cached, read-only."""
    p = json.loads(key)
    xs, ys, perm = _raw(p, p["seed"], p["num_samples"])
    perm = perm[swap_order(p)]
    mean, std = xs.mean(), xs.std()   # make_dataset standardises with the statistics of the whole set
    x = (xs[..., perm] - mean) / std
    split = int(len(ys) * p["train_split"])
    # validation: more examples of the same generator, in the published set's feature order and units
    per_class = -(-p["val_size"] // 10)
    xv, yv, _ = _raw({**p, "shuffle_seq": False}, p["seed"] + VAL_SEED_OFFSET, 10 * per_class)
    xv = ((xv[..., perm] - mean) / std)[: p["val_size"]]
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    i64 = lambda a: np.asarray(a, dtype=np.int64)  # noqa: E731
    out = f32(x[:split]), i64(ys[:split]), f32(xv), i64(yv[: p["val_size"]]), f32(x[split:]), i64(ys[split:])
    for a in out:
        a.flags.writeable = False  # cached: callers copy before writing
    return out


def _raw(p: dict, seed: int, num_samples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``make_dataset``'s examples before standardisation: (x, y, feature permutation), generated exactly as
    ``mnist1d.data.make_dataset`` does it (a test checks the result against it), without touching the caller's
    global random state."""
    from mnist1d.data import get_dataset_args, get_templates, transform  # noqa: PLC0415

    args = get_dataset_args()
    for k, v in p.items():
        if k not in OWN:
            setattr(args, k, v)
    args.seed, args.num_samples = seed, num_samples
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        random.seed(seed)
        np.random.seed(seed)
        templates = get_templates()
        xs, ys = [], []
        for label in range(len(templates["y"])):
            for _ in range(num_samples // len(templates["y"])):
                xs.append(transform(templates["x"][label], templates["t"], args)[0])
                ys.append(templates["y"][label])
        order = np.random.permutation(len(ys))
        xs, ys = np.stack(xs)[order], np.stack(ys)[order]
        perm = np.random.permutation(args.final_seq_length) if args.shuffle_seq else np.arange(xs.shape[-1])
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return xs, ys, perm
