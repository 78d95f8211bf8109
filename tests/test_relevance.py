"""Relevance flows: which units keep their couplings, per level; and the signatures on them."""

import numpy as np
import pytest
import xarray as xr
from conftest import small_config

import rgnet
from rgnet.rg.relevance import open_relevance, relevance_flow
from rgnet.universality import signatures
from rgnet.universality.distances import run_distances
from rgnet.universality.signatures import spectrum


def test_relevance_flow_by_hand():
    m = np.zeros((2, 3, 2), np.uint8)           # levels 0 and 1 of a layer with 3 outputs, 2 inputs
    m[0] = 1
    m[1] = [[1, 0], [1, 0], [0, 0]]
    w = np.arange(12, dtype=float).reshape(2, 3, 2) - 6
    masks = xr.Dataset({"fc": (("level", "o", "i"), m)}, coords={"level": [0, 1]})
    trained = xr.Dataset({"fc.weight": (("level", "o", "i"), w)}, coords={"level": [0, 1]})
    r = relevance_flow(masks, trained).sel(layer="fc")
    np.testing.assert_allclose(r.fan_in.sel(level=1).values, [0.5, 0.5, 0.0])
    np.testing.assert_allclose(r.fan_out.sel(level=1).values[:2], [2 / 3, 0.0])
    assert np.isnan(r.fan_out.sel(level=1).values[2])                       # the layer has only 2 inputs
    np.testing.assert_allclose(r.fan_out_mass.sel(level=1).values[:2], [abs(0) + abs(2), 0.0])
    np.testing.assert_allclose(r.fan_in_mass.sel(level=0).values, [abs(-6) + abs(-5), 4 + 3, 2 + 1])


@pytest.mark.slow   # default suite under 3 minutes; .ci/run runs it
def test_relevance_sees_which_inputs_matter(tmp_path, one_thread):
    """Teachers reading 10 of the 40 inputs against teachers reading all of them: the input relevance of the
    first tells the two apart; a permuted copy of the 10-input task differs unaligned, not up to a permutation."""
    cfg = small_config().replace(prune={"levels": 3, "fraction": 0.4}, train={"steps": 200, "eval_every": 50})
    tasks = {"ten": {"support": 10, "seed": 1}, "all": {"seed": 1},
             "ten_perm": {"support": 10, "seed": 1, "input_order_seed": 3}}
    paths = {t: [rgnet.record(cfg.replace(task={"name": "teacher", "params": p}, seed=s), tmp_path / f"{t}{s}.h5",
                              progress=False) for s in (0, 1)] for t, p in tasks.items()}
    r = open_relevance(paths["ten"][0]).fan_out.sel(layer="fc1").isel(level=-1).values[:40]
    assert r[:10].mean() > 2 * r[10:].mean()                                  # the support keeps its weights
    sig = signatures([p for ps in paths.values() for p in ps],
                     ["relevance_inputs", "relevance_sorted", "relevance_dmd"])
    d = {k: run_distances(v).values for k, v in sig.items()}                   # runs: ten0 ten1 all0 all1 perm0 perm1
    within = d["relevance_inputs"][0, 1]
    assert d["relevance_inputs"][0, 2] > 2 * within and d["relevance_inputs"][0, 4] > 2 * within
    assert d["relevance_sorted"][0, 4] < d["relevance_sorted"][0, 2]   # up to symmetry the permuted copy is near
    ev = sig["relevance_dmd"].eigenvalues.values
    assert np.isfinite(ev[:, 0]).all() and (np.abs(ev[:, 0]) <= 1.5).all()   # fractions shrink level by level


def test_the_relevance_spectrum_is_blind_to_permutations_of_units():
    rng = np.random.default_rng(0)
    traj = xr.DataArray(np.cumprod(rng.uniform(0.6, 1.0, (6, 30)), 0), dims=("level", "component"))
    a = spectrum(traj).eigenvalues.values
    b = spectrum(traj.isel(component=rng.permutation(30))).eigenvalues.values
    np.testing.assert_allclose(np.sort_complex(a[np.isfinite(a)]), np.sort_complex(b[np.isfinite(b)]), atol=1e-9)


def test_recorded_relevance_equals_the_flow_from_the_stored_tensors(tmp_path, small_cfg, one_thread):
    """What the recorder stores per level is what older files get computed from their masks and weights."""
    path = rgnet.record(small_cfg, tmp_path / "r.h5", progress=False)
    stored = open_relevance(path)
    computed = relevance_flow(rgnet.open_tensors(path, "mask").load(), rgnet.open_tensors(path, "trained").load())
    assert set(stored.data_vars) == set(computed.data_vars) == {"fan_in", "fan_out", "fan_in_mass", "fan_out_mass"}
    for v in stored.data_vars:
        np.testing.assert_allclose(stored[v].values, computed[v].values, rtol=1e-6, equal_nan=True)
    assert stored.fan_out.dims == ("level", "layer", "unit")
