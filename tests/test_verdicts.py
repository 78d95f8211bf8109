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

    def decide(x, ref, dim, points):   # the mean over seeds within ``points`` of the dense mean
        return (x.mean(dim) >= ref.mean(dim) - points / 100).astype(float)

    register(Rule("within_points", decide, lambda ds, points: ds.n_transfers.max("level") * 0 + 1,
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
        assert d.attrs["rule_name"] == "noninferior" and d.attrs["margin"] == 0.02
        assert winning_tickets(seeds, rule="one_dense_std").attrs["tolerance"] == 0.01
        with pytest.raises(ConfigError, match="takes no parameter tolerance .--tolerance.; it takes points .--points."):
            winning_tickets(seeds, rule="within_points", tolerance=0.02)
        with pytest.raises(ConfigError, match="unknown verdict rule 'nope'; choose one of one_dense_std, noninferior"):
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
    v = winning_tickets(seeds, rule="one_dense_std")
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
    m = transfer_matrix([a, b], tolerance=0.01, rule="one_dense_std")
    src, tgt = "mnist1d", "mnist1d(shuffle_seq=true)"
    assert set(m.source.values) == {src, tgt} and m.transfer_acc.dims == ("source", "target", "level")
    c = m.sel(source=src, target=tgt)
    assert int(c.compare_level) == 2 and not bool(c.transfers)
    np.testing.assert_allclose(float(c.gap_at_winning), 0.78 - 0.79)
    np.testing.assert_allclose(c.gap.values[1:], [-0.005, -0.01, 0.05])
    assert np.isnan(float(m.transfers.sel(source=tgt, target=src)))   # never run
    assert bool(m.transfers.sel(source=tgt, target=tgt))               # the diagonal is the own ticket
    _set(b, group, [np.nan, 0.80, 0.795, 0.75])
    m = transfer_matrix([a, b], tolerance=0.01, rule="one_dense_std")
    assert bool(m.transfers.sel(source=src, target=tgt))
    assert "yes" in format_transfer_matrix(m)
    # the own ticket fails at every pruned level: a matching transferred ticket transfers, a failing one does not
    _set(b, "", [0.80, 0.70, 0.70, 0.70])
    _set(b, group, [np.nan, 0.80, 0.80, 0.60])
    m2 = transfer_matrix([a, b], tolerance=0.01, rule="one_dense_std").sel(source=src, target=tgt)
    assert int(m2.compare_level) == -1 and bool(m2.transfers)
    _set(b, group, [np.nan, 0.70, 0.70, 0.70])
    assert not bool(transfer_matrix([a, b], tolerance=0.01, rule="one_dense_std").transfers.sel(source=src, target=tgt))
    assert f"{src} -> {tgt}" in format_transfer_gaps(m) and "5.0" in format_transfer_gaps(m)


def test_noninferiority_by_hand_against_scipy():
    """Three values from one-sided t bounds on paired differences, as scipy's one-sample t test gives them."""
    from scipy import stats

    from rgnet.verdicts.rules import noninferior

    rng = np.random.default_rng(1)
    cases = {"transfers": rng.normal(0.0, 0.01, 8), "does not": rng.normal(-0.06, 0.01, 8),
             "undecided": np.array([-0.03, 0.01, -0.05, 0.0])}
    for want, d in zip((1, 0, -1), cases.values()):
        got = float(noninferior(xr.DataArray(d, dims="seed"), "seed", 0.02, 0.05))
        above = stats.ttest_1samp(d, -0.02, alternative="greater").pvalue < 0.05   # lower bound above -margin
        below = stats.ttest_1samp(d, -0.02, alternative="less").pvalue < 0.05      # upper bound below it
        assert got == want == (1 if above else 0 if below else -1)
    assert float(noninferior(xr.DataArray([0.05], dims="seed"), "seed", 0.02, 0.05)) == -1   # one seed: undecided
    assert np.isnan(float(noninferior(xr.DataArray([np.nan, np.nan], dims="seed"), "seed", 0.02, 0.05)))


@pytest.mark.slow   # default suite under 3 minutes; .ci/run runs it
def test_transfer_as_a_paired_number_with_intervals(tmp_path):
    """Per seed, the transferred ticket minus the own ticket of that seed and level; intervals over seeds."""
    from scipy import stats

    files = {}
    for seed in (0, 1, 2):
        a = rgnet.record(small_config(seed=seed), tmp_path / f"a{seed}.h5", progress=False)
        b = rgnet.record(small_config(seed=seed, task={"params": {"shuffle_seq": True}}), tmp_path / f"b{seed}.h5",
                         progress=False)
        files[seed] = (a, b, transfer(a, b, [1, 2, 3], progress=False))
    gaps = {0: [-0.01, -0.02, -0.03], 1: [0.0, -0.01, -0.01], 2: [-0.02, -0.02, -0.05]}
    for seed, (_, b, group) in files.items():
        _set(b, "", [0.80, 0.79, 0.78, 0.76])
        _set(b, group, [np.nan, *(np.array([0.79, 0.78, 0.76]) + gaps[seed])])
    m = transfer_matrix([b for _, b, _ in files.values()] + [a for a, _, _ in files.values()])
    src, tgt = "mnist1d", "mnist1d(shuffle_seq=true)"
    c = m.sel(source=src, target=tgt)
    np.testing.assert_allclose(c.gap_seed.sel(level=[1, 2, 3]).values, [gaps[s] for s in (0, 1, 2)], atol=1e-12)
    per_seed = np.array([np.mean(gaps[s]) for s in (0, 1, 2)])
    np.testing.assert_allclose(c.gap_range_seed.values, per_seed)
    low, high = stats.t.interval(0.95, 2, loc=per_seed.mean(), scale=stats.sem(per_seed))
    np.testing.assert_allclose(c.gap_range_ci.values, [low, high])
    low, high = c.gap_range_boot.values   # a percentile interval of means lies within the seeds' range
    assert per_seed.min() - 1e-12 <= low < per_seed.mean() < high <= per_seed.max() + 1e-12
    assert int(c.range_levels) == 3 and m.attrs["rule_name"] == "noninferior"
    # mean -0.0189 with 3 seeds: the lower bound is far below -2 points, the upper far above: undecided
    assert int(c.transfer_verdict) == -1 and np.isnan(float(c.transfers))
    assert int(m.transfer_verdict.sel(source=tgt, target=src)) == -2   # never run
