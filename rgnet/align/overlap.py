"""Overlap of tickets: mask IoU of two runs before and after matching their hidden units, against chance."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import xarray as xr

from rgnet.align.units import match_units, mlp_layers, permute_mlp
from rgnet.errors import ConfigError, StoreError
from rgnet.store.reader import read_tensors
from rgnet.store.writer import check_run_file


def iou(m1: np.ndarray, m2: np.ndarray) -> float:
    """Intersection over union of two boolean masks."""
    union = np.logical_or(m1, m2).sum()
    return float(np.logical_and(m1, m2).sum() / union) if union else np.nan


def chance_iou(d1, d2):
    """Expected IoU of two independent random masks of densities ``d1`` and ``d2``: ``d1 d2 / (d1 + d2 - d1 d2)``
    (``d / (2 - d)`` for equal densities)."""
    return d1 * d2 / (d1 + d2 - d1 * d2)


def ticket_iou(path_a: str | Path, path_b: str | Path, levels: Sequence[int] | None = None, *, by: str = "mask",
               match_level: int = 0, n_null: int = 20, seed: int = 0) -> xr.Dataset:
    """Mask IoU between the tickets of two MLP runs, before and after matching their hidden units.

    Parameters
    ----------
    path_a, path_b : run files (same MLP architecture; tasks with the same input features)
    levels : IMP levels to compare (default: every pruned level both runs have)
    by : ``"mask"`` — match the masks of each level themselves (maximises their overlap; the reference is
        then random masks with the same per-layer counts, matched the same way); ``"trained"`` — Git Re-Basin
        on the trained weights and biases of ``match_level`` (default the dense network; needs runs recorded
        with tensors), one matching applied to every level's masks.
    n_null : random mask pairs per level for the matched-random reference (``by="mask"``).

    Returns
    -------
    xr.Dataset with dims ``(level, layer)``; ``layer`` includes ``"all"`` (pooled over layers):
    ``iou_before``, ``iou_after``, ``iou_chance`` (independent random masks), ``iou_null_after`` (random masks
    after matching; equals chance for ``by="trained"``, whose matching ignores the masks), ``density``.
    """
    if by not in ("mask", "trained"):
        raise ConfigError(f"by must be mask or trained, got {by!r}")

    ma, mb = _read_masks(path_a), _read_masks(path_b)
    init = read_tensors(path_a, "init")
    layers = mlp_layers(init)
    shapes = {x: init[f"{x}.weight"].shape for x in layers}
    if set(ma) != set(mb) or any(ma[n].shape[1:] != mb[n].shape[1:] for n in ma):
        raise ConfigError(f"{str(path_a)!r} and {str(path_b)!r} have different layers or shapes; "
                          "ticket IoU needs runs of the same architecture")
    n = min(len(next(iter(ma.values()))), len(next(iter(mb.values()))))
    levels = list(range(1, n)) if levels is None else list(levels)
    if any(not 0 <= lv < n for lv in levels):
        raise ConfigError(f"levels {levels} are not all recorded in both runs (levels 0-{n - 1})")
    fixed = None
    if by == "trained":
        wa, wb = _read_trained(path_a, match_level), _read_trained(path_b, match_level)
        fixed = match_units([wa[f"{x}.weight"] for x in layers], [wb[f"{x}.weight"] for x in layers],
                            bias_a=[wa[f"{x}.bias"] for x in layers], bias_b=[wb[f"{x}.bias"] for x in layers],
                            seed=seed)
    names = list(ma) + ["all"]
    shape = (len(levels), len(names))
    before, after, chance, null, dens = (np.full(shape, np.nan) for _ in range(5))
    rng = np.random.default_rng(seed)
    for i, lv in enumerate(levels):
        a = {x: ma[x][lv] for x in ma}
        b = {x: mb[x][lv] for x in mb}
        perms = fixed if fixed is not None else _match_masks(a, b, shapes, seed)
        before[i] = _ious(a, b)
        after[i] = _ious(a, permute_mlp(b, layers, unit_perms=perms))
        da = np.array([a[x].mean() for x in a] + [_pooled_density(a)])
        db = np.array([b[x].mean() for x in b] + [_pooled_density(b)])
        chance[i], dens[i] = chance_iou(da, db), (da + db) / 2
        if fixed is not None:
            null[i] = chance[i]
            continue
        draws = []
        for _ in range(n_null):
            ra = {x: _shuffled(m, rng) for x, m in a.items()}
            rb = {x: _shuffled(m, rng) for x, m in b.items()}
            draws.append(_ious(ra, permute_mlp(rb, layers, unit_perms=_match_masks(ra, rb, shapes, seed))))
        null[i] = np.mean(draws, 0)
    dims = ("level", "layer")
    out = xr.Dataset({
        "iou_before": (dims, before, {"long_name": "mask IoU of the two tickets as recorded", "units": "1"}),
        "iou_after": (dims, after, {"long_name": f"mask IoU after matching hidden units (by {by})", "units": "1"}),
        "iou_chance": (dims, chance, {"long_name": "IoU of independent random masks, d1 d2 / (d1 + d2 - d1 d2)",
                                      "units": "1"}),
        "iou_null_after": (dims, null, {"long_name": "IoU of random masks (same counts) after the same matching",
                                        "units": "1"}),
        "density": (dims, dens, {"long_name": "mean density of the two masks", "units": "1"}),
    }, coords={"level": levels, "layer": names})
    out.attrs.update(by=by, path_a=str(path_a), path_b=str(path_b), n_null=n_null if fixed is None else 0,
                     match_level=match_level if by == "trained" else -1)
    return out


def _match_masks(a: dict, b: dict, shapes: dict[str, tuple], seed: int) -> list[np.ndarray]:
    """Unit matching on masks (maximises their overlap); an unpruned layer (no mask) adds nothing."""
    def side(m):
        return [m[x].astype(np.float64) if x in m else np.zeros(s) for x, s in shapes.items()]

    return match_units(side(a), side(b), seed=seed)


def _ious(a: dict, b: dict) -> np.ndarray:
    inter = [np.logical_and(a[x], b[x]).sum() for x in a]
    union = [np.logical_or(a[x], b[x]).sum() for x in a]
    return np.array([i / u if u else np.nan for i, u in zip(inter, union)] + [sum(inter) / sum(union)])


def _pooled_density(m: dict) -> float:
    return sum(int(v.sum()) for v in m.values()) / sum(v.size for v in m.values())


def _shuffled(m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(m.ravel()).reshape(m.shape)


def _read_masks(path) -> dict[str, np.ndarray]:
    """Masks of every complete level: layer -> (level, out, in) bool."""

    n = int(check_run_file(Path(path))["levels_complete"])
    per = [read_tensors(path, "mask", lv) for lv in range(n)]
    return {k: np.stack([m[k] for m in per]).astype(bool) for k in per[0]} if per else {}


def _read_trained(path, level: int) -> dict[str, np.ndarray]:
    try:
        trained = read_tensors(path, "trained", level)
    except StoreError:
        trained = {}
    if not trained:
        raise StoreError(f"{str(path)!r} holds no trained weights of level {level}; record it with tensors "
                         "(the default) to match units by trained weights, or use by='mask'")
    return trained
