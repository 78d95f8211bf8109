"""Matching verdicts, winning tickets and the transfer matrix on hand-made numbers written into real files."""

import h5py
import numpy as np
import pytest
import xarray as xr
from conftest import small_config

import rgnet
from rgnet.imp.branches import run_baselines
from rgnet.imp.transfer import transfer
from rgnet.verdicts import (
    DEFAULT_METRIC,
    format_tickets,
    format_transfer_gaps,
    format_transfer_matrix,
    matching,
    transfer_matrix,
    winning_level,
    winning_tickets,
)


def _set(path, group, values, var=DEFAULT_METRIC):
    with h5py.File(path, "a") as f:
        f[f"{group}/{var}" if group else var][:] = np.asarray(values, dtype=float)


def test_matching_rule():
    assert matching(0.81, 0.82, 0.02) and matching(0.80, 0.82, 0.02) and not matching(0.79, 0.82, 0.02)
    assert matching(0.90, 0.82, 0.02)                   # better than dense is matching
    assert matching(0.815, 0.82, None, tolerance=0.01) and not matching(0.805, 0.82, None, tolerance=0.01)
    assert not matching(0.805, 0.82, np.nan, tolerance=0.01)   # NaN std (one seed) -> tolerance
    assert not matching(np.nan, 0.82, 0.02)
    got = matching(xr.DataArray([0.8, 0.7], dims="level"), xr.DataArray(0.82), xr.DataArray(np.nan), 0.05)
    assert got.values.tolist() == [True, False]


def test_a_rule_is_one_registry_entry_recorded_by_name(seeds):
    """A new rule is one ``register`` call; verdict tables apply it and record its name, parameters and text."""
    from rgnet.errors import ConfigError
    from rgnet.verdicts import RULES, Rule, register

    register(Rule("within_points", lambda acc, dense_mean, dense_std, points: acc >= dense_mean - points / 100,
                  lambda points: f"matching = accuracy >= dense - {points:g} points", {"points": 5.0}))
    try:
        for p in seeds:
            _set(p, "", [0.80, 0.70, 0.76, 0.60])
        v = winning_tickets(seeds, rule="within_points")
        e = v.experiment.values[0]
        assert v.matching.sel(experiment=e, arm="imp").values.tolist() == [True, False, True, False]
        assert v.attrs["rule_name"] == "within_points" and v.attrs["rule_params"] == '{"points": 5.0}'
        assert "5 points" in v.attrs["rule"] and "5 points" in format_tickets(v)
        d = winning_tickets(seeds)   # the default rule, recorded as such
        assert d.attrs["rule_name"] == "one_dense_std" and d.attrs["tolerance"] == 0.01
        with pytest.raises(ConfigError, match="takes no parameter tolerance"):
            winning_tickets(seeds, rule="within_points", tolerance=0.02)
        with pytest.raises(ConfigError, match="unknown verdict rule 'nope'; choose one of one_dense_std"):
            winning_tickets(seeds, rule="nope")
    finally:
        del RULES["within_points"]


def test_winning_level_walks_down_until_the_first_miss_and_skips_untrained_levels():
    acc = xr.DataArray([0.9, np.nan, 0.89, 0.85, 0.95], dims="level")
    ok = xr.DataArray([True, False, True, False, True], dims="level")
    assert int(winning_level(ok, acc)) == 2           # level 1 untrained, level 3 fails, level 4 does not count
    assert int(winning_level(xr.DataArray([False] * 5, dims="level"), acc)) == -1


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    d = tmp_path_factory.mktemp("seeds")
    paths = [rgnet.record(small_config(seed=s), d / f"s{s}.h5", progress=False) for s in range(3)]
    for p in paths:
        run_baselines(p, ["reinit"], [1, 2, 3], progress=False)
    return paths


def test_winning_tickets_over_seeds(seeds):
    # dense 0.80/0.82/0.84: mean 0.82, std 0.02 -> matching means >= 0.80
    imp = [[0.80, 0.80, 0.79, 0.78], [0.82, 0.81, 0.80, 0.79], [0.84, 0.82, 0.81, 0.80]]   # means .82 .81 .80 .79
    reinit = [[np.nan, 0.80, 0.78, 0.85], [np.nan, 0.81, 0.79, 0.85], [np.nan, 0.82, 0.80, 0.85]]
    for p, a, r in zip(seeds, imp, reinit):
        _set(p, "", a)
        _set(p, "branches/reinit", r)
    v = winning_tickets(seeds)
    e = v.experiment.values[0]
    assert v.sizes["experiment"] == 1 and int(v.seeds.sel(experiment=e, arm="imp", level=0)) == 3
    np.testing.assert_allclose(float(v.dense_mean.sel(experiment=e)), 0.82)
    np.testing.assert_allclose(float(v.dense_std.sel(experiment=e)), 0.02)
    assert v.matching.sel(experiment=e, arm="imp").values.tolist() == [True, True, True, False]
    assert v.matching.sel(experiment=e, arm="reinit").values.tolist() == [False, True, False, True]
    dens = rgnet.open_run(seeds[0]).density.values
    np.testing.assert_allclose(float(v.winning_density.sel(experiment=e, arm="imp")), dens[2])
    np.testing.assert_allclose(float(v.winning_density.sel(experiment=e, arm="reinit")), dens[1])
    # single runs: own dense, the experiment's std: seed 0 (dense .80) matches while >= .78
    np.testing.assert_allclose(float(v.run_winning_density.sel(run=0, arm="imp")), dens[3])
    text = format_tickets(v)
    assert "82.0±2.0" in text and "winning ticket" in text


def test_transfer_matrix_verdicts(tmp_path):
    a = rgnet.record(small_config(), tmp_path / "a.h5", progress=False)
    b = rgnet.record(small_config(task={"params": {"shuffle_seq": True}}), tmp_path / "b.h5", progress=False)
    group = transfer(a, b, [1, 2, 3], progress=False)
    _set(b, "", [0.80, 0.80, 0.79, 0.70])                 # one seed: tolerance 0.01 -> own winning level 2
    _set(b, group, [np.nan, 0.795, 0.78, 0.75])          # matching at 1 only -> does not transfer
    m = transfer_matrix([a, b], tolerance=0.01)
    src, tgt = "mnist1d", "mnist1d(shuffle_seq=true)"
    assert set(m.source.values) == {src, tgt} and m.transfer_acc.dims == ("source", "target", "level")
    c = m.sel(source=src, target=tgt)
    assert int(c.compare_level) == 2 and not bool(c.transfers)
    np.testing.assert_allclose(float(c.gap_at_winning), 0.78 - 0.79)
    np.testing.assert_allclose(c.gap.values[1:], [-0.005, -0.01, 0.05])
    assert np.isnan(float(m.transfers.sel(source=tgt, target=src)))   # never run
    assert bool(m.transfers.sel(source=tgt, target=tgt))               # the diagonal is the own ticket
    _set(b, group, [np.nan, 0.80, 0.795, 0.75])
    m = transfer_matrix([a, b], tolerance=0.01)
    assert bool(m.transfers.sel(source=src, target=tgt))
    assert "yes" in format_transfer_matrix(m)
    # the own ticket fails at every pruned level: a matching transferred ticket transfers, a failing one does not
    _set(b, "", [0.80, 0.70, 0.70, 0.70])
    _set(b, group, [np.nan, 0.80, 0.80, 0.60])
    m2 = transfer_matrix([a, b], tolerance=0.01).sel(source=src, target=tgt)
    assert int(m2.compare_level) == -1 and bool(m2.transfers)
    _set(b, group, [np.nan, 0.70, 0.70, 0.70])
    assert not bool(transfer_matrix([a, b], tolerance=0.01).transfers.sel(source=src, target=tgt))
    assert f"{src} -> {tgt}" in format_transfer_gaps(m) and "5.0" in format_transfer_gaps(m)
