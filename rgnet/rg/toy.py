"""Exactly solvable RG maps and a Monte Carlo block-spin RG, as trajectories ``(run, level, coupling)``.

Known answers: 1D Ising decimation (b = 2) ``tanh K' = tanh^2 K`` flows to ``K* = 0``; 2D Ising
Migdal-Kadanoff (b = 2) ``K' = 1/2 ln cosh 4K`` has ``K* = 0.304689``, ``lambda = 2 tanh 4K* = 1.678574``,
``y = 0.747236``, ``nu = 1.338266``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

from rgnet.errors import ConfigError

#: Fixed point and eigenvalue of the 2D Migdal-Kadanoff map (b = 2).
MK_FIXED_POINT = 0.3046889
MK_EIGENVALUE = 1.6785739


def _iterate(step: Callable[[np.ndarray], np.ndarray], k0, levels: int, b: float, long_name: str) -> xr.DataArray:
    k = np.atleast_1d(np.asarray(k0, dtype=float))
    if levels < 1:
        raise ConfigError(f"levels must be at least 1, got {levels}.")
    out = [k]
    for _ in range(levels - 1):
        out.append(step(out[-1]))
    values = np.stack(out, axis=1)[..., None]
    return xr.DataArray(
        values,
        dims=("run", "level", "coupling"),
        coords={"run": np.arange(k.size), "level": np.arange(levels), "coupling": ["K"]},
        name="couplings",
        attrs={"long_name": long_name, "units": "1", "scale_factor": float(b)},
    )


def ising1d_decimation(k0: float | np.ndarray, levels: int = 8) -> xr.DataArray:
    """1D Ising chain, decimation of every second spin (b = 2): ``tanh K' = tanh^2 K``.

    Parameters
    ----------
    k0 : float or array of float
        Initial couplings ``K = J / kT``, one run each.
    levels : int
        Number of levels including the initial one.

    Returns
    -------
    xr.DataArray
        Dims ``(run, level, coupling)`` with coupling ``"K"``; attribute ``scale_factor = 2``.
    """
    return _iterate(lambda k: np.arctanh(np.tanh(k) ** 2), k0, levels, 2.0, "1D Ising nearest-neighbour coupling K")


def migdal_kadanoff_2d(k0: float | np.ndarray, levels: int = 8) -> xr.DataArray:
    """2D Ising, Migdal-Kadanoff bond moving with b = 2: ``K' = 1/2 ln cosh 4K``.

    Parameters and returns as in :func:`ising1d_decimation`.
    """
    return _iterate(lambda k: 0.5 * np.log(np.cosh(4 * k)), k0, levels, 2.0, "2D Ising nearest-neighbour coupling K")


def _neighbour_sum(s: np.ndarray) -> np.ndarray:
    return np.roll(s, 1, 0) + np.roll(s, -1, 0) + np.roll(s, 1, 1) + np.roll(s, -1, 1)


def _metropolis_sweep(s: np.ndarray, k: float, rng: np.random.Generator, parity: np.ndarray) -> None:
    for colour in (0, 1):
        flip_cost = 2.0 * k * s * _neighbour_sum(s)
        accept = (parity == colour) & (rng.random(s.shape) < np.exp(-np.clip(flip_cost, 0, None)))
        s[accept] *= -1


def _wolff_update(s: np.ndarray, k: float, rng: np.random.Generator) -> None:
    n = s.shape[0]
    p_add = 1.0 - np.exp(-2.0 * k)
    i, j = rng.integers(0, n, 2)
    spin = s[i, j]
    s[i, j] = -spin
    stack = [(i, j)]
    while stack:
        a, c = stack.pop()
        for na, nc in (((a + 1) % n, c), ((a - 1) % n, c), (a, (c + 1) % n), (a, (c - 1) % n)):
            if s[na, nc] == spin and rng.random() < p_add:
                s[na, nc] = -spin
                stack.append((na, nc))


def _block(s: np.ndarray, block: int, rng: np.random.Generator) -> np.ndarray:
    """Kadanoff majority rule on ``block x block`` cells; ties (even blocks) broken at random."""
    n = s.shape[0] // block
    total = s.reshape(n, block, n, block).sum(axis=(1, 3))
    ties = rng.choice([-1, 1], size=total.shape)
    return np.where(total == 0, ties, np.sign(total)).astype(s.dtype)


def block_spin_ising2d(
    k: float,
    size: int = 81,
    block: int = 3,
    n_runs: int = 4,
    n_samples: int = 20,
    burn_in: int = 200,
    sweeps_between: int = 5,
    algorithm: str = "metropolis",
    seed: int = 0,
) -> xr.DataArray:
    """Kadanoff block-spin RG of 2D Ising Monte Carlo configurations (periodic square lattice).

    Each run is an independent Markov chain at coupling ``k``; each sampled configuration is blocked
    repeatedly by majority rule, and block-spin observables are averaged over samples per level.

    Parameters
    ----------
    k : float
        Coupling ``K = J / kT`` (critical point ``K_c = 0.440687``).
    size : int
        Linear lattice size; blocking continues while the blocked lattice is at least 3 wide.
    block : int
        Linear block size ``b`` (odd avoids ties).
    n_runs, n_samples : int
        Independent chains, and configurations sampled per chain.
    burn_in, sweeps_between : int
        Updates before the first sample and between samples (a Metropolis sweep or one Wolff cluster
        per site-fraction: ``size`` clusters count as one update for Wolff).
    algorithm : {"metropolis", "wolff"}
        Checkerboard Metropolis (vectorised) or Wolff cluster updates (pure Python, small lattices).
    seed : int
        Seed of the random stream.

    Returns
    -------
    xr.DataArray
        Dims ``(run, level, coupling)`` with couplings ``nn_correlation`` (mean ``s_i s_j`` over
        nearest neighbours), ``nnn_correlation`` (diagonal neighbours) and ``abs_magnetisation``;
        attribute ``scale_factor = block``.
    """
    if algorithm not in ("metropolis", "wolff"):
        raise ConfigError(f"Unknown algorithm {algorithm!r}; choose 'metropolis' or 'wolff'.")
    if block < 2 or size < 3 * block:
        raise ConfigError(f"Need block >= 2 and size >= 3 * block, got size={size}, block={block}.")
    sizes = [size]
    while sizes[-1] % block == 0 and sizes[-1] // block >= 3:
        sizes.append(sizes[-1] // block)
    rng = np.random.default_rng(seed)
    parity = np.add.outer(np.arange(size), np.arange(size)) % 2

    def update(s: np.ndarray, times: int) -> None:
        for _ in range(times):
            if algorithm == "metropolis":
                _metropolis_sweep(s, k, rng, parity)
            else:
                for _ in range(max(1, size // 8)):
                    _wolff_update(s, k, rng)

    obs = np.zeros((n_runs, len(sizes), 3))
    for r in range(n_runs):
        s = rng.choice(np.array([-1, 1], dtype=np.int8), size=(size, size))
        update(s, burn_in)
        for _ in range(n_samples):
            update(s, sweeps_between)
            blocked = s
            for level in range(len(sizes)):
                if level:
                    blocked = _block(blocked, block, rng)
                f = blocked.astype(float)
                nn = 0.5 * np.mean(f * (np.roll(f, 1, 0) + np.roll(f, 1, 1)))
                nnn = 0.5 * np.mean(f * (np.roll(np.roll(f, 1, 0), 1, 1) + np.roll(np.roll(f, 1, 0), -1, 1)))
                obs[r, level] += (nn, nnn, abs(f.mean()))
    obs /= n_samples
    return xr.DataArray(
        obs,
        dims=("run", "level", "coupling"),
        coords={
            "run": np.arange(n_runs),
            "level": np.arange(len(sizes)),
            "coupling": ["nn_correlation", "nnn_correlation", "abs_magnetisation"],
            "lattice_size": ("level", np.asarray(sizes)),
        },
        name="couplings",
        attrs={"long_name": f"2D Ising block-spin observables at K={k}", "units": "1", "scale_factor": float(block)},
    )
