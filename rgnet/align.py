"""Transfer up to symmetry: permutations between tasks (input features) and between networks (hidden units).

Two symmetries leave what an MLP can learn unchanged. A fixed permutation of the input features is absorbed
by permuting the first layer's columns; a permutation of a hidden layer's units is absorbed by permuting
that layer's rows and the next layer's columns. A winning ticket lives in one frame; this module finds the
correspondence to another frame and carries the ticket across it.

- :func:`align_inputs` estimates the input permutation between two tasks from their data alone: graph
  matching of the feature-feature correlation matrices (``scipy.optimize.quadratic_assignment``, FAQ),
  started from the barycentre, from ``linear_sum_assignment`` of per-feature statistics and of
  sorted-correlation signatures, and from seeded random points; the best are polished by 2-opt. Its
  confidence compares the objective with that of uniformly random permutations, next to the same score on
  structure-free data (``null_confidence``).
- :func:`match_units` is weight matching (Ainsworth et al., Git Re-Basin, arXiv 2209.04836, algorithm 1):
  one ``linear_sum_assignment`` per hidden layer, by coordinate descent until no layer changes.
- :func:`permute_mlp` applies both to the tensors of an MLP (masks, weights, biases).
- :func:`ticket_iou` is the analysis: how similar are the tickets of two runs once their hidden units are
  matched (mask IoU before and after, against chance ``d / (2 - d)`` and against random masks matched alike).

Convention: ``permutation[j]`` is the source feature (or unit of network ``b``) matched to target feature
(unit of ``a``) ``j``, so ``x_target[:, j] ~ x_source[:, permutation[j]]`` and the aligned first layer is
``W_source[:, permutation]``. Nothing here imports torch.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import xarray as xr

from rgnet.errors import ConfigError, StoreError
from rgnet.store.reader import read_tensors
from rgnet.store.writer import check_run_file

ALIGN_MODES = ("none", "inputs", "inputs+units")
MLP_MODELS = ("mlp", "lenet_300_100")   # the models whose first layer sees the flattened input


def check_align(mode: str, model: str | None = None) -> None:
    """:class:`ConfigError` unless ``mode`` is one of :data:`ALIGN_MODES` (and ``model`` is an MLP when aligning)."""
    if mode not in ALIGN_MODES:
        raise ConfigError(f"--align must be one of {', '.join(ALIGN_MODES)}, got {mode!r}")
    if mode != "none" and model is not None and model not in MLP_MODELS:
        raise ConfigError(f"--align {mode} needs an MLP ({', '.join(MLP_MODELS)}), whose first layer sees the "
                          f"flattened input; model {model!r} is not one — use --align none")


# ------------------------------------------------------------------------------------------- input features

INPUT_METHODS = ("qap", "faq", "stats")


def align_inputs(x_source, x_target, y_source=None, y_target=None, *, method: str = "qap", starts: int = 16,
                 n_random: int = 1000, seed: int = 0) -> xr.Dataset:
    """The permutation of input features that carries the source task's frame to the target's.

    Parameters
    ----------
    x_source, x_target : array (sample, *in_shape)
        Inputs of the two tasks (any sample counts; samples need not correspond). Flattened to features.
    y_source, y_target : array (sample,), optional
        Class labels; when both are given, class-conditional feature statistics inform one of the starts.
    method : str
        ``"qap"`` (default): the full search above. For comparison only: ``"faq"`` — FAQ from the barycentre
        alone; ``"stats"`` — ``linear_sum_assignment`` of per-feature statistics alone (no graph matching).
    starts : int
        Random starts of the graph matching, besides the barycentre and the two descriptor starts.
    n_random : int
        Uniformly random permutations forming the reference for the confidence.
    seed : int
        Seeds the random starts, the random permutations and the null (the result is deterministic).

    Returns
    -------
    xr.Dataset
        ``permutation(feature)``: the source feature matched to each target feature. Scalars: ``objective``
        = sum over i != j of C_target[i, j] C_source[p_i, p_j] (C: feature correlation matrices); ``cosine``
        (the objective over the norms of the off-diagonal parts: 1 = identical correlation structure);
        ``identity_objective``; ``random_mean`` / ``random_std`` over ``n_random`` random permutations;
        ``confidence`` = (objective - random_mean) / random_std; ``null_confidence``, the same score when the
        source's features are made independent (each column shuffled over samples) and matched alike — what
        the search reaches on structure-free data. Trust a permutation whose confidence is far above it.
    """
    if method not in INPUT_METHODS:
        raise ConfigError(f"input alignment method must be one of {', '.join(INPUT_METHODS)}, got {method!r}")
    xs, xt = _features(x_source), _features(x_target)
    if xs.shape[1] != xt.shape[1]:
        raise ConfigError(f"input features differ: the source task has {xs.shape[1]}, the target task "
                          f"{xt.shape[1]}; input alignment needs tasks with the same number of input features")
    rng = np.random.default_rng(seed)
    perm, obj, rand = _match_features(xs, xt, y_source, y_target, method, starts, n_random, rng)
    null = np.column_stack([rng.permutation(col) for col in xs.T])
    _, null_obj, null_rand = _match_features(null, xt, y_source, y_target, method, starts, n_random, rng)
    a, b = _correlation(xt), _correlation(xs)
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    out = xr.Dataset(
        {"permutation": ("feature", perm.astype(np.int64),
                         {"long_name": "source feature matched to each target feature: x_target[:, j] ~ "
                                       "x_source[:, permutation[j]]"}),
         "objective": ((), obj, {"long_name": "sum over i != j of C_target[i, j] C_source[p_i, p_j]", "units": "1"}),
         "cosine": ((), obj / norm if norm else np.nan,
                    {"long_name": "cosine between the off-diagonal correlations after alignment", "units": "1"}),
         "identity_objective": ((), _qap_objective(a, b, np.arange(len(a))),
                                {"long_name": "objective without permutation", "units": "1"}),
         "random_mean": ((), rand.mean(), {"long_name": f"mean objective of {n_random} random permutations"}),
         "random_std": ((), rand.std(ddof=1), {"long_name": "std of the random permutations' objective"}),
         "confidence": ((), (obj - rand.mean()) / rand.std(ddof=1),
                        {"long_name": "objective above random permutations, in their standard deviations",
                         "units": "1"}),
         "null_confidence": ((), (null_obj - null_rand.mean()) / null_rand.std(ddof=1),
                             {"long_name": "confidence reached against the source with independent features",
                              "units": "1"}),
         },
        coords={"feature": np.arange(len(perm))})
    out.attrs.update(method=_describe(method, starts), seed=seed)
    return out


def _match_features(xs, xt, ys, yt, method: str, starts: int, n_random: int, rng: np.random.Generator):
    """Best permutation, its objective and the objectives of ``n_random`` random permutations."""
    from scipy.optimize import quadratic_assignment  # noqa: PLC0415

    a, b = _correlation(xt), _correlation(xs)
    d = len(a)
    by_stats = _assign(_feature_stats(xt, yt, ys), _feature_stats(xs, ys, yt))
    if method == "stats":
        best = by_stats
    elif method == "faq":
        best = quadratic_assignment(a, b, method="faq", options={"maximize": True, "rng": rng}).col_ind
    else:
        eye = np.eye(d)
        found = []
        for p0 in ["barycenter", eye[by_stats], eye[_assign(_row_signature(a), _row_signature(b))]] \
                + ["randomized"] * starts:
            found.append(quadratic_assignment(a, b, method="faq",
                                              options={"maximize": True, "P0": p0, "rng": rng}).col_ind)
        # FAQ stops at a local optimum of its relaxation; pairwise swaps (2-opt) from there reach the planted
        # permutation on weakly correlated features where FAQ alone does not (README: transfer up to symmetry)
        polished = []
        for perm in dict.fromkeys(tuple(p) for p in sorted(found, key=lambda p: -_qap_objective(a, b, p))[:4]):
            res = quadratic_assignment(a, b, method="2opt", options={"maximize": True, "rng": rng,
                                                                      "partial_guess": np.c_[np.arange(d), perm]})
            polished.append(res.col_ind)
        best = max(polished, key=lambda p: (_qap_objective(a, b, p), tuple(-p)))
    rand = np.array([_qap_objective(a, b, rng.permutation(d)) for _ in range(n_random)])
    return best, _qap_objective(a, b, best), rand


def _describe(method: str, starts: int) -> str:
    if method == "stats":
        return "scipy linear_sum_assignment of per-feature statistics (mean, std, skewness, class means and stds)"
    if method == "faq":
        return "scipy quadratic_assignment (FAQ, maximise) on feature correlation matrices from the barycentre"
    return ("scipy quadratic_assignment (FAQ, maximise) on feature correlation matrices from the barycentre, "
            "per-feature statistics and sorted-correlation signatures (both by linear_sum_assignment) and "
            f"{starts} random starts; the best four polished by 2-opt")


def _features(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2 or len(x) < 3:
        raise ConfigError(f"input alignment needs arrays of shape (samples >= 3, features...), got {x.shape}")
    return x.reshape(len(x), -1)


def _correlation(x: np.ndarray) -> np.ndarray:
    """Feature-feature correlation with a zero diagonal; constant features correlate with nothing."""
    z = x - x.mean(0)
    sd = z.std(0)
    z = np.divide(z, sd, out=np.zeros_like(z), where=sd > 0)
    c = z.T @ z / len(z)
    np.fill_diagonal(c, 0.0)   # the diagonal is the same under every permutation: leave it out
    return c


def _feature_stats(x: np.ndarray, y, y_other) -> np.ndarray:
    """Per-feature descriptors (feature, stat): mean, std, skewness, and class-conditional means and stds for
    the classes both tasks share."""
    mean, sd = x.mean(0), x.std(0)
    skew = (((x - mean) / np.where(sd > 0, sd, 1)) ** 3).mean(0)
    cols = [mean, sd, skew]
    if y is not None and y_other is not None:
        for c in np.intersect1d(np.unique(y), np.unique(y_other)):
            xc = x[np.asarray(y) == c]
            cols += [xc.mean(0), xc.std(0)]
    return np.stack(cols, 1)


def _row_signature(c: np.ndarray) -> np.ndarray:
    """Each feature's correlations with the others, sorted: a descriptor that no permutation changes."""
    off = np.where(np.eye(len(c), dtype=bool), -np.inf, c)   # drop the diagonal (sorted first)
    return np.sort(off, 1)[:, 1:]


def _assign(desc_target: np.ndarray, desc_source: np.ndarray) -> np.ndarray:
    """The source feature assigned to each target feature by nearest descriptors (linear_sum_assignment)."""
    from scipy.optimize import linear_sum_assignment  # noqa: PLC0415

    cost = ((desc_target[:, None, :] - desc_source[None, :, :]) ** 2).sum(-1)
    return linear_sum_assignment(cost)[1]


def _qap_objective(a: np.ndarray, b: np.ndarray, perm: np.ndarray) -> float:
    """sum over i != j of a[i, j] b[p_i, p_j] (the correlation matrices here have zero diagonals)."""
    return float(np.sum(a * b[np.ix_(perm, perm)]))


def true_permutation(order_source: np.ndarray, order_target: np.ndarray) -> np.ndarray:
    """The permutation (in :func:`align_inputs`' convention) between two views of the same raw features,
    ``x_source = raw[:, order_source]`` and ``x_target = raw[:, order_target]``."""
    return np.argsort(order_source)[order_target]


def planted_features(n: int = 4000, d: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A synthetic task pair with a planted permutation: ``(x_source, x_target, permutation)``.

    Both draw ``n`` independent samples (no sample corresponds) from one Gaussian with a random correlation
    structure (covariance ``A A^T / d`` with ``A`` standard normal); the target's features are permuted by a
    random ``permutation`` in :func:`align_inputs`' convention.
    """
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((d, d)) / np.sqrt(d)
    perm = rng.permutation(d)
    xs = rng.standard_normal((n, d)) @ a.T
    xt = (rng.standard_normal((n, d)) @ a.T)[:, perm]
    return xs, xt, perm


# ------------------------------------------------------------------------------------------- hidden units

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


def alignment_attrs(inputs: xr.Dataset | None, units: dict[str, np.ndarray] | None, mode: str) -> dict[str, str]:
    """What a transfer branch stores about its alignment (JSON strings, netCDF-safe)."""
    out = {"align": mode}
    if inputs is not None:
        out["input_permutation"] = json.dumps(inputs.permutation.values.tolist())
        keys = ("objective", "cosine", "identity_objective", "random_mean", "random_std", "confidence",
                "null_confidence")
        out["input_alignment"] = json.dumps({k: float(inputs[k]) for k in keys} | {"method": inputs.attrs["method"]})
    if units is not None:
        out["unit_permutations"] = json.dumps({k: np.asarray(v).tolist() for k, v in units.items()})
    return out
