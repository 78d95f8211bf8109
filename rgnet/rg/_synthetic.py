"""Synthetic run Datasets with the rgnet run-file schema, for tests and benchmarks (no training needed)."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr
from scipy import stats

from rgnet.theory import QF_SIZE, QUANTILES, bin_edges, histogram, quantile_atoms

N_EVAL = 5
CURVES = ("train_loss", "val_loss", "val_acc", "test_loss", "test_acc")


def _standard(dist: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit-variance samples."""
    if dist == "laplace":
        return rng.laplace(0.0, 1.0 / np.sqrt(2.0), n)
    return rng.standard_normal(n)


def synthetic_run(
    levels: int = 13,
    layers: tuple[str, ...] = ("fc1", "fc2", "fc3"),
    sizes: tuple[int, ...] = (4000, 2000, 500),
    n_bins: int = 64,
    fraction: float = 0.2,
    sigma0: float | tuple[float, ...] = 0.1,
    decay: float = 0.9,
    dist: str = "laplace",
    seed: int = 0,
    run_id: str | None = None,
    atoms: bool = True,
) -> xr.Dataset:
    """A run Dataset whose weights keep their shape while their std shrinks by ``decay`` per level.

    Level ``n`` keeps a random ``(1 - fraction)^n`` share of a fixed standard sample per layer, scaled to
    std ``sigma0 * decay^n``; the histogram grid is fixed at level 0 (``bin_scale`` = largest |w|).
    ``atoms``: include the quantile atoms ``w_qf`` (as schema-2 files do); without them the flow is
    computed from the histograms.
    """
    rng = np.random.default_rng(seed)
    sig0 = np.broadcast_to(np.asarray(sigma0, dtype=float), (len(layers),))
    edges_u = bin_edges(n_bins)
    lev = np.arange(levels)
    shape_ll = (levels, len(layers))
    out = {k: np.zeros(shape_ll) for k in ("w_mean", "w_std", "w_skew", "w_kurtosis", "rewind_std", "count")}
    hist = np.zeros((*shape_ll, n_bins))
    hist_rewind = np.zeros_like(hist)
    w_q = np.zeros((*shape_ll, QUANTILES.size))
    qf = np.full((*shape_ll, QF_SIZE), np.nan, dtype=np.float32)
    absw_q = np.zeros_like(w_q)
    bin_scale = np.zeros(len(layers))
    for j, n0 in enumerate(sizes):
        z = _standard(dist, rng, n0)
        z_rewind = rng.standard_normal(n0)
        bin_scale[j] = sig0[j] * np.abs(z).max() * 1.0001
        for n in lev:
            keep = max(2, int(round(n0 * (1 - fraction) ** n)))
            w = sig0[j] * decay**n * z[:keep]
            hist[n, j] = histogram(w, bin_scale[j], n_bins)
            hist_rewind[n, j] = histogram(sig0[j] * z_rewind[:keep], bin_scale[j], n_bins)
            qf[n, j] = quantile_atoms(w) if atoms else np.nan
            w_q[n, j] = np.quantile(w, QUANTILES)
            absw_q[n, j] = np.quantile(np.abs(w), QUANTILES)
            out["w_mean"][n, j], out["w_std"][n, j] = w.mean(), w.std()
            out["w_skew"][n, j], out["w_kurtosis"][n, j] = stats.skew(w), stats.kurtosis(w)
            out["rewind_std"][n, j] = sig0[j] * z_rewind[:keep].std()
            out["count"][n, j] = keep
    sizes_arr = np.asarray(sizes, dtype=float)
    density = out["count"].sum(1) / sizes_arr.sum()
    loss = 0.3 + 0.02 * lev + 0.01 * rng.random(levels)
    curve = loss[:, None] * (1 + np.linspace(1, 0, N_EVAL))[None, :]
    level_vars = {
        name: (("level",), value)
        for name, value in {
            "train_loss": loss * 0.8,
            "train_acc": 1 - loss / 2,
            "val_loss": loss,
            "val_acc": 0.9 - loss / 3,
            "test_loss": loss * 1.01,
            "test_acc": 0.9 - loss / 3,
            "stop_iteration": np.full(levels, 1000, dtype=np.int64),
        }.items()
    }
    config = {
        "task": {"name": "synthetic", "params": {}},
        "model": {"name": "mlp"},
        "train": {},
        "prune": {"levels": levels - 1, "fraction": fraction, "scope": "layerwise", "rewind": 0},
        "store": {},
        "seed": seed,
    }
    ll = ("level", "layer")
    return xr.Dataset(
        {
            "bin_scale": (ll, np.broadcast_to(bin_scale, shape_ll).copy()),
            **level_vars,
            "layer_density": (ll, out["count"] / sizes_arr),
            "layer_count": (ll, out["count"].astype(np.int64)),
            "hist": ((*ll, "bin"), hist),
            "hist_rewind": ((*ll, "bin"), hist_rewind),
            "w_quantile": ((*ll, "quantile"), w_q),
            **({"w_qf": ((*ll, "atom"), qf)} if atoms else {}),
            "absw_quantile": ((*ll, "quantile"), absw_q),
            "w_mean": (ll, out["w_mean"]),
            "w_std": (ll, out["w_std"]),
            "w_skew": (ll, out["w_skew"]),
            "w_kurtosis": (ll, out["w_kurtosis"]),
            "rewind_std": (ll, out["rewind_std"]),
            **{f"curve_{c}": (("level", "eval"), curve) for c in CURVES},
        },
        coords={
            "level": lev,
            "density": (("level",), density),
            "layer": list(layers),
            "bin": 0.5 * (edges_u[:-1] + edges_u[1:]),
            "bin_bounds": (("bin", "bnd"), np.stack([edges_u[:-1], edges_u[1:]], axis=1)),
            "quantile": QUANTILES,
            "iteration": (("eval",), np.linspace(0, 1000, N_EVAL).astype(np.int64)),
        },
        attrs={
            "rgnet_schema": 2,
            "run_id": run_id if run_id is not None else f"synthetic-{seed}",
            "config": json.dumps(config),
            "levels_complete": levels,
        },
    )


def synthetic_tensors(
    levels: int = 6,
    shapes: dict[str, tuple[int, ...]] | None = None,
    fraction: float = 0.2,
    decay: float = 0.9,
    seed: int = 0,
) -> xr.Dataset:
    """A ``tensors/trained``-like Dataset: magnitude-pruned weights (exact zeros) shrinking by ``decay``."""
    shapes = shapes or {"fc1.weight": (30, 40), "fc1.bias": (30,), "fc2.weight": (10, 30)}
    rng = np.random.default_rng(seed)
    data = {}
    for name, shape in shapes.items():
        w0 = rng.standard_normal(shape)
        order = np.argsort(np.abs(w0), axis=None)
        stack = []
        for n in range(levels):
            mask = np.ones(w0.size, bool)
            mask[order[: int(round(w0.size * (1 - (1 - fraction) ** n)))]] = False
            stack.append(decay**n * w0 * mask.reshape(shape))
        dims = ("level", *[f"{name.replace('.', '_')}_d{k}" for k in range(len(shape))])
        data[name] = (dims, np.stack(stack))
    return xr.Dataset(data, coords={"level": np.arange(levels)})
