"""Exactly solvable RG maps recovered through the generic API (no special-casing)."""

import numpy as np
import pytest

import rgnet.rg as rg

K_STAR, LAMBDA, Y, NU = 0.304689, 1.678574, 0.747236, 1.338266


@pytest.fixture(scope="module")
def mk_near():
    offsets = np.array([-3, -2, -1, 1, 2, 3]) * 1e-3
    return rg.migdal_kadanoff_2d(K_STAR + offsets, levels=5)


@pytest.mark.parametrize("model", ["affine", "quadratic"])
def test_migdal_kadanoff_fixed_point_and_exponent(mk_near, model):
    lin = rg.linearise(mk_near, model=model, window=0.05, n_boot=100)
    assert lin.attrs["scale_factor"] == 2.0
    assert lin["fixed_point"].item() == pytest.approx(K_STAR, abs=1e-4)
    lam = complex(lin["eigenvalues"].item())
    assert lam.imag == 0
    assert lam.real == pytest.approx(LAMBDA, abs=1e-3)
    y = float(lin["exponents"].item())
    assert y == pytest.approx(Y, abs=1e-3)
    assert 1 / y == pytest.approx(NU, abs=2e-3)
    assert str(lin["kind"].item()) == "relevant"
    lo, hi = lin["exponents_ci"].values[0]
    assert lo <= hi and lo < Y + 0.02 and hi > Y - 0.02


def test_migdal_kadanoff_local_fit_beats_global_fit_far_from_fixed_point():
    offsets = np.linspace(-0.03, 0.03, 13)
    traj = rg.migdal_kadanoff_2d(K_STAR + offsets, levels=6)
    err_all = abs(complex(rg.linearise(traj, n_boot=0)["eigenvalues"].item()) - LAMBDA)
    local = rg.linearise(traj, n_boot=0, window=0.01)
    err_local = abs(complex(local["eigenvalues"].item()) - LAMBDA)
    assert err_local < err_all
    assert err_local < 2e-2
    assert local["fixed_point"].item() == pytest.approx(K_STAR, abs=1e-3)


def test_ising1d_decimation_flows_to_zero():
    traj = rg.ising1d_decimation([0.5, 1.0, 1.5], levels=10)
    level = rg.fixed_point_level(traj, tol=1e-3)
    assert level.dims == ("run",)
    assert np.all(level.values >= 1) and np.all(level.values <= 8)
    assert np.all(np.diff(level.values) >= 0)  # stronger couplings need more steps
    assert np.all(traj.isel(level=-1).values < 1e-6)
    lin = rg.linearise(traj, model="quadratic", window=0.05, n_boot=0)
    # tanh K' = tanh^2 K, i.e. K' ~ K^2 near 0: the fixed point K* = 0 has lambda = 0 (strongly irrelevant)
    assert lin["fixed_point"].item() == pytest.approx(0.0, abs=1e-3)
    assert abs(complex(lin["eigenvalues"].item())) < 0.05
    assert str(lin["kind"].item()) == "irrelevant"


def test_beta_function_of_migdal_kadanoff():
    traj = rg.migdal_kadanoff_2d([0.2, 0.5], levels=4)
    beta = rg.beta_function(traj)
    k = beta["g"].values
    np.testing.assert_allclose(beta["beta"].values, 0.5 * np.log(np.cosh(4 * k)) - k, rtol=1e-12)
    assert np.all(beta["beta"].sel(run=0).values < 0) and np.all(beta["beta"].sel(run=1).values > 0)


@pytest.mark.parametrize("algorithm", ["metropolis", "wolff"])
def test_block_spin_flows_away_from_criticality(algorithm):
    kw = dict(size=27, block=3, n_runs=2, n_samples=4, burn_in=30, sweeps_between=2, algorithm=algorithm)
    hot = rg.block_spin_ising2d(0.2, seed=1, **kw)
    cold = rg.block_spin_ising2d(0.7, seed=2, **kw)
    assert hot.dims == ("run", "level", "coupling") and hot.sizes["level"] == 3
    assert hot.attrs["scale_factor"] == 3.0
    nn_hot = hot.sel(coupling="nn_correlation").mean("run").values
    nn_cold = cold.sel(coupling="nn_correlation").mean("run").values
    assert nn_hot[-1] < nn_hot[0]  # disordered: block spins decorrelate (K -> 0)
    assert nn_cold[-1] > 0.9  # ordered: block spins align (K -> infinity)
