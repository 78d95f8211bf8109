"""Hidden units: weight matching between two networks (Git Re-Basin), and carrying an MLP's tensors across
permutations of its inputs and units."""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from rgnet.errors import ConfigError


def match_units(a: Sequence[np.ndarray], b: Sequence[np.ndarray], *, bias_a: Sequence[np.ndarray] | None = None,
                bias_b: Sequence[np.ndarray] | None = None, input_perm: np.ndarray | None = None,
                max_iter: int = 100, seed: int = 0) -> list[np.ndarray]:
    """Weight matching (Git Re-Basin): permutations of ``b``'s hidden units that best match ``a``.

    Parameters
    ----------
    a, b : sequences of arrays (out, in)
        The weight matrices (or masks as floats) of two MLPs, layer by layer from input to output.
    bias_a, bias_b : sequences of arrays (out,), optional
        Their biases (they join the objective when given).
    input_perm : array (in,), optional
        A fixed permutation of ``b``'s inputs (from :func:`align_inputs`); default identity.
    max_iter, seed : int
        Coordinate-descent sweeps (layers in a seeded random order) until no permutation changes.

    Returns
    -------
    list of arrays (units,)
        One permutation per hidden layer: ``perm[l][i]`` is ``b``'s unit matched to ``a``'s unit ``i``.
        Maximises ``sum_l <W^a_l, P_l W^b_l P_{l-1}^T>`` (+ biases); the output layer's term is left out when
        the two output layers differ in shape (another class count).
    """
    from scipy.optimize import linear_sum_assignment  # noqa: PLC0415

    if len(a) != len(b) or any(x.shape[0] != y.shape[0] for x, y in zip(a[:-1], b[:-1])):
        raise ConfigError("unit matching needs two MLPs of the same depth and hidden widths")
    n_hidden = len(a) - 1
    perms = [np.arange(w.shape[0]) for w in a[:-1]]
    p_in = np.arange(a[0].shape[1]) if input_perm is None else np.asarray(input_perm)
    rng = np.random.default_rng(seed)
    for _ in range(max_iter):
        changed = False
        for layer in rng.permutation(n_hidden):
            cols = p_in if layer == 0 else perms[layer - 1]
            score = a[layer] @ b[layer][:, cols].T
            if bias_a is not None and bias_b is not None:
                score = score + np.outer(bias_a[layer], bias_b[layer])
            nxt_a, nxt_b = a[layer + 1], b[layer + 1]
            if nxt_a.shape == nxt_b.shape:
                rows = perms[layer + 1] if layer + 1 < n_hidden else np.arange(nxt_b.shape[0])
                score = score + nxt_a.T @ nxt_b[rows]
            new = linear_sum_assignment(score, maximize=True)[1]
            if _gain(score, new) > _gain(score, perms[layer]) + 1e-12:
                perms[layer], changed = new, True
        if not changed:
            break
    return perms


def _gain(score: np.ndarray, perm: np.ndarray) -> float:
    return float(score[np.arange(len(perm)), perm].sum())


def permute_mlp(arrays: dict[str, np.ndarray], layers: Sequence[str], input_perm: np.ndarray | None = None,
                unit_perms: Sequence[np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Carry an MLP's tensors across the permutations: keys ``<layer>`` (masks, (out, in)), ``<layer>.weight``
    and ``<layer>.bias`` of the Linear ``layers`` in order; other keys are kept. Layer ``l`` takes rows
    ``unit_perms[l]`` (hidden layers) and columns ``input_perm`` (first layer) or ``unit_perms[l - 1]``."""
    out = dict(arrays)
    for k, layer in enumerate(layers):
        rows = unit_perms[k] if unit_perms is not None and k < len(layers) - 1 else None
        cols = input_perm if k == 0 else (unit_perms[k - 1] if unit_perms is not None else None)
        for key in (layer, f"{layer}.weight"):
            if key in out:
                w = out[key]
                w = w if rows is None else w[np.asarray(rows)]
                out[key] = w if cols is None else w[:, np.asarray(cols)]
        if f"{layer}.bias" in out and rows is not None:
            out[f"{layer}.bias"] = out[f"{layer}.bias"][np.asarray(rows)]
    return out


def mlp_layers(names) -> list[str]:
    """The Linear layers of an rgnet MLP (``fc1, fc2, ...``) in order, from tensor or layer names."""
    found = {n.split(".")[0] for n in names if re.fullmatch(r"fc\d+(\.weight)?", n)}
    return sorted(found, key=lambda n: int(n[2:]))


# ------------------------------------------------------------------------------------------- analysis
