"""Universality: spectral distances, the calibrated same-class test, classes, and scoring on hand-made matrices."""

import ast
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from scipy import stats
from scipy.optimize import linear_sum_assignment

from rgnet.universality import (
    auroc,
    class_graph,
    class_share,
    classes,
    loto_balanced_accuracy,
    mantel_p,
    permutation_test,
    same_class_test,
    w1_spectra,
    weighted_tau,
)
from rgnet.universality.baselines import additive_scores
from rgnet.universality.classes import energy_statistic
from rgnet.universality.distances import rms_distances, standardised_distances
from rgnet.universality.signatures import spectrum

# ---- W1 between spectra -----------------------------------------------------------------------------------


def _points(rng, n):
    return rng.normal(size=n) + 1j * rng.normal(size=n)


def test_w1_equal_counts_is_the_best_matching_mean():
    rng = np.random.default_rng(0)
    a, b = _points(rng, 5), _points(rng, 5)
    brute = min(np.mean(np.abs(a - b[list(p)])) for p in itertools.permutations(range(5)))
    for unequal in ("pad", "uniform"):
        assert w1_spectra(a, b, unequal=unequal) == pytest.approx(brute, rel=1e-9)
    assert w1_spectra(a, a) == 0.0 and w1_spectra(a, b) == w1_spectra(b, a)


def test_w1_unequal_counts():
    rng = np.random.default_rng(1)
    a, b = _points(rng, 2), _points(rng, 3)
    # pad: the missing eigenvalue of the rank-2 operator is 0
    brute = min(np.mean(np.abs(np.append(a, 0) - b[list(p)])) for p in itertools.permutations(range(3)))
    assert w1_spectra(a, b, unequal="pad") == pytest.approx(brute)
    # uniform measures with masses 1/2 and 1/3: replicate to 6 points each, then it is an assignment problem
    ra, rb = np.repeat(a, 3), np.repeat(b, 2)
    cost = np.abs(ra[:, None] - rb[None, :])
    r, c = linear_sum_assignment(cost)
    assert w1_spectra(a, b, unequal="uniform") == pytest.approx(cost[r, c].mean(), rel=1e-7)
    # amplitude weights: all mass on one mode each -> the distance between those two eigenvalues
    amp_a, amp_b = np.array([1, 0]), np.array([0, 0, 2])
    assert w1_spectra(a, b, amp_a, amp_b, unequal="amplitude") == pytest.approx(abs(a[0] - b[2]), rel=1e-7)
    assert np.isnan(w1_spectra(a, [np.nan]))  # an empty spectrum


def test_coin_flip_swaps_never_exceed_the_observed_distance():
    """Why 2302.09160's swap test is not a p-value: after swapping matched pairs, the old pairing is still a
    matching of the new sets, so the optimal distance cannot grow."""
    rng = np.random.default_rng(2)
    for _ in range(20):
        a, b = _points(rng, 6), _points(rng, 6)
        r, c = linear_sum_assignment(np.abs(a[:, None] - b[None, :]))
        observed = w1_spectra(a, b)
        for _ in range(20):
            swap = rng.random(6) < 0.5
            a2, b2 = a.copy(), b.copy()
            a2[r[swap]], b2[c[swap]] = b[c[swap]], a[r[swap]]
            assert w1_spectra(a2, b2) <= observed + 1e-12


def test_vector_distances():
    v = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, np.nan]])
    d = rms_distances(v)
    assert d[0, 1] == pytest.approx(np.sqrt(12.5)) and d[0, 2] == pytest.approx(3.0) and d[1, 2] == 0.0
    y, se = np.array([[0.0], [2.0]]), np.array([[1.0], [1.0]])
    assert standardised_distances(y, se)[0, 1] == pytest.approx(2 / np.sqrt(2))


# ---- the permutation test --------------------------------------------------------------------------------


def _dist(points):
    return np.linalg.norm(points[:, None] - points[None, :], axis=-1)


def test_energy_statistic_by_hand():
    d = _dist(np.array([[0.0], [1.0], [5.0], [7.0]]))
    t = energy_statistic(d, np.array([[True, True, False, False]]))[0]
    between = np.mean([5, 7, 4, 6])
    within = np.mean([1, 2])
    assert t == pytest.approx(between - within)


def test_perfect_separation_with_three_seeds_gives_p_one_tenth():
    d = _dist(np.array([[0.0], [0.1], [0.2], [10.0], [10.1], [10.3]]))
    res = permutation_test(d, 3)
    assert res["exhaustive"] and res["n_splits"] == 20
    assert res["p_value"] == pytest.approx(0.1) and res["p_min"] == pytest.approx(0.1)
    assert 0 <= res["p_value_randomised"] <= 0.1


def test_p_values_uniform_under_the_null():
    """Fresh null data each time (two pseudo-tasks from one distribution): the randomised p-values pass a KS
    test against U(0, 1), and the conventional ones reject at most alpha of the time."""
    rng = np.random.default_rng(3)
    p, p_conv = [], []
    for _ in range(300):
        pts = rng.normal(size=(8, 3))
        res = permutation_test(_dist(pts), 4, rng=rng)
        p.append(res["p_value_randomised"])
        p_conv.append(res["p_value"])
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert np.mean(np.array(p_conv) <= 0.1) <= 0.1 + 3 * np.sqrt(0.1 * 0.9 / 300)


def _planted_flow(eigs, rng, levels=12, noise=0.01):
    """One run of the linear flow x_{n+1} = A x_n + noise with A = Q diag(eigs) Q^-1 (Q fixed)."""
    q = np.array([[1.0, 0.4, 0.1], [0.2, 1.0, 0.3], [0.1, 0.2, 1.0]])
    a = q @ np.diag(eigs) @ np.linalg.inv(q)
    x = [rng.normal(size=3)]
    for _ in range(levels - 1):
        x.append(a @ x[-1] + noise * rng.normal(size=3))
    return xr.DataArray(np.array(x), dims=("level", "coupling"))


def _flow_pvalue(eigs_a, eigs_b, n, rng):
    spectra = [spectrum(_planted_flow(e, rng), rank=3)["eigenvalues"].values for e in [eigs_a] * n + [eigs_b] * n]
    d = np.array([[w1_spectra(x, y) for y in spectra] for x in spectra])
    return permutation_test(d, n, rng=rng)


def test_calibration_and_power_on_planted_flows():
    rng = np.random.default_rng(4)
    same = [_flow_pvalue((0.9, 0.6, 0.3), (0.9, 0.6, 0.3), 4, rng)["p_value_randomised"] for _ in range(100)]
    assert stats.kstest(same, "uniform").pvalue > 0.01
    power = np.mean([_flow_pvalue((0.9, 0.6, 0.3), (0.7, 0.4, 0.1), 4, rng)["p_value"] <= 0.1 for _ in range(20)])
    assert power >= 0.8


def test_classes_from_a_hand_made_distance_matrix():
    # runs of a and b interleave on a line; c lies far away
    pts = np.array([0.0, 0.2, 0.4, 0.1, 0.3, 0.5, 5.0, 5.1, 5.3])
    dist = xr.DataArray(_dist(pts[:, None]), dims=("run", "run2"), coords={"task": ("run", list("aaabbbccc"))})
    test = same_class_test(dist)
    assert float(test.p_value.sel(task="a", other="c")) == pytest.approx(0.1)
    assert float(test.p_value.sel(task="a", other="b")) > 0.1
    g = class_graph(test, alpha=0.1)
    assert set(map(frozenset, g.edges)) == {frozenset("ab")}
    assert g.edges["a", "b"]["distance"] == pytest.approx(float(test.between.sel(task="a", other="b")))
    for method in ("components", "communities"):
        ids = classes(g, method)
        assert ids["a"] == ids["b"] != ids["c"]
    share = class_share(dist, n_boot=50)
    assert float(share.sel(task="a", other="c")) < 0.2 < float(share.sel(task="a", other="b"))
    assert np.allclose(share.values, share.values.T) and np.all(np.diag(share.values) == 1)


# ---- scoring -----------------------------------------------------------------------------------------------


def test_auroc_by_hand_and_against_mann_whitney():
    assert auroc([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0]) == pytest.approx(0.75)
    assert auroc([1, 1, 1, 1], [1, 0, 1, 0]) == 0.5
    assert np.isnan(auroc([1, 2], [1, 1]))
    rng = np.random.default_rng(6)
    s, y = rng.normal(size=40).round(1), rng.random(40) < 0.4
    u = stats.mannwhitneyu(s[y], s[~y]).statistic
    assert auroc(s, y) == pytest.approx(u / (y.sum() * (~y).sum()))


def test_weighted_tau_per_target_mean():
    gap = np.array([[0, -1.0, -3, -1], [-2, 0, -1, -2], [-1, -2, 0, -3], [-3, -3, -2, 0]])
    assert weighted_tau(gap, gap) == (pytest.approx(1.0), 4)
    assert weighted_tau(-gap, gap) == (pytest.approx(-1.0), 4)
    score = np.arange(16.0).reshape(4, 4)
    expected = np.mean([stats.weightedtau(score[[i for i in range(4) if i != j], j],
                                          gap[[i for i in range(4) if i != j], j]).statistic for j in range(4)])
    assert weighted_tau(score, gap)[0] == pytest.approx(expected)


def test_scores_do_not_depend_on_the_task_order():
    """Tied scores that differ by float noise (a least-squares fit in another order) must still tie."""
    rng = np.random.default_rng(7)
    t = (rng.random((6, 6)) < 0.4).astype(float)
    gap = -rng.random((6, 6))
    np.fill_diagonal(t, np.nan)
    values = []
    for perm in (np.arange(6), rng.permutation(6), rng.permutation(6)):
        tp, gp = t[np.ix_(perm, perm)], gap[np.ix_(perm, perm)]
        add = additive_scores(tp)
        off = ~np.eye(6, dtype=bool)
        values.append((weighted_tau(add, gp)[0], auroc(add[off], tp[off])))
    assert np.allclose(values, values[0], rtol=0, atol=1e-12)


def test_mantel_exhaustive_on_four_tasks():
    """Tasks {0, 1} and {2, 3} transfer within their pair. A perfect score has AUROC 1 under the 8 of 24
    relabellings that keep the pairing, and below 1 under the others: p = 8 / 24."""
    t = np.zeros((4, 4))
    t[0, 1] = t[1, 0] = t[2, 3] = t[3, 2] = 1
    np.fill_diagonal(t, np.nan)
    score = np.nan_to_num(t)
    off = ~np.eye(4, dtype=bool)
    p = mantel_p(score, lambda s: auroc(s[off], t[off]))
    assert p == pytest.approx(8 / 24)
    assert math.factorial(4) == 24


def test_leave_one_task_out_thresholds():
    # tickets transfer within the blocks {0, 1, 2} and {3, 4}: every fold keeps both verdicts to learn from
    block = np.array([0, 0, 0, 1, 1])
    t = (block[:, None] == block[None, :]).astype(float)
    np.fill_diagonal(t, np.nan)
    assert loto_balanced_accuracy(np.nan_to_num(t), t) == 1.0
    assert loto_balanced_accuracy(-np.nan_to_num(t), t) <= 0.5
    # when the held-out task holds every positive pair, no threshold can be learnt without it
    t = np.zeros((5, 5))
    t[0] = 1
    np.fill_diagonal(t, np.nan)
    assert loto_balanced_accuracy(np.nan_to_num(t), t) == 0.75


def test_additive_model_recovers_a_source_effect():
    t = np.zeros((5, 5))
    t[0] = 1  # source 0 transfers everywhere, nobody else does
    np.fill_diagonal(t, np.nan)
    add = additive_scores(t)
    off = ~np.eye(5, dtype=bool)
    assert auroc(add[off], t[off]) == 1.0


def test_universality_never_imports_torch():
    for path in Path(__file__).parents[1].glob("rgnet/universality/*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] == "torch" for n in names), path


def test_a_signature_is_one_registry_entry():
    """A new signature is one ``register_signature`` function; ``signatures`` computes it, the CLI lists it."""
    from rgnet.cli import _parser
    from rgnet.rg._synthetic import synthetic_run
    from rgnet.universality.signatures import SIGNATURES, register_signature, signatures

    @register_signature("std_decay", "l2", "per-level decay of the weight std (test signature)")
    def std_decay(run, layer: str = "fc1"):
        s = run.ds["w_std"].sel(layer=layer).values
        return xr.Dataset({"vector": (("component",), np.log(s[1:] / s[:-1]))},
                          coords={"component": np.arange(len(s) - 1)})

    try:
        runs = [synthetic_run(levels=5, decay=d, seed=s, run_id=f"r{d}{s}") for d in (0.9, 0.7) for s in (0, 1)]
        out = signatures(runs, names=["std_decay"], options={"std_decay": {"layer": "fc2"}})["std_decay"]
        assert out.sizes["run"] == 4 and out.attrs["distance"] == "l2"
        np.testing.assert_allclose(out.vector.values[:2], np.log(0.9), atol=0.05)
        np.testing.assert_allclose(out.vector.values[2:], np.log(0.7), atol=0.05)
        assert "std_decay" in next(a for a in _parser()._actions if a.dest == "command").choices[
            "universality"].format_help()
    finally:
        del SIGNATURES["std_decay"]


def test_input_distance_of_a_task_this_rgnet_does_not_know_is_nan():
    from rgnet.universality.baselines import input_distance

    d = input_distance({"a": {"name": "mnist1d", "params": {}}, "b": {"name": "no_such_task", "params": {}}})
    assert np.isfinite(d[0, 0]) and np.isnan(d[0, 1]) and np.isnan(d[1, 1])


def test_beyond_effects_sees_pair_information_and_not_main_effects():
    """A score made of source and target effects only has nothing beyond them; a score that knows the pair has."""
    from rgnet.universality.scoring import beyond_effects, residuals

    rng = np.random.default_rng(0)
    k = 7
    a, b, pair = rng.normal(size=k), rng.normal(size=k), rng.normal(size=(k, k))
    gap = a[:, None] + b[None, :] + pair
    np.fill_diagonal(gap, np.nan)
    main = a[:, None] + 2 * b[None, :]
    assert abs(beyond_effects(main, gap)) < 1e-6 or np.isnan(beyond_effects(main, gap))
    assert beyond_effects(pair + 0.1 * rng.normal(size=(k, k)), gap) > 0.9
    r = residuals(gap)   # the fit leaves no row or column effect behind
    np.testing.assert_allclose(np.nanmean(r, axis=1), 0, atol=0.2)


def test_holm_by_hand():
    from rgnet.universality.scoring import holm

    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, np.nan, 0.5]), [0.04, 0.09, 0.09, np.nan, 0.5])


def test_a_constant_predictor_makes_no_prediction():
    from rgnet.universality.scoring import score_matrix

    t = np.eye(4)[::-1].astype(float)
    np.fill_diagonal(t, np.nan)
    row = score_matrix(np.ones((4, 4)), t, np.where(np.isnan(t), np.nan, t - 0.5), n_perm=9, n_task_boot=9)
    assert np.isnan(row["auroc"]) and np.isnan(row["tau_w"]) and row["tau_targets"] == 0


def test_within_seed_exchange_is_calibrated_when_seeds_share_their_initialisation():
    """Two tasks with no difference, each seed's runs sharing a random offset (one initialisation for both
    tasks): labels exchanged within a seed give uniform p-values; the splits are the 2^n within-seed swaps."""
    from scipy.stats import kstest

    from rgnet.universality.classes import permutation_test

    rng = np.random.default_rng(3)
    n_seeds, p = 6, []
    blocks = np.tile(np.arange(n_seeds), 2)
    for _ in range(300):
        offset = rng.normal(size=(n_seeds, 3)) * 3
        x = np.concatenate([offset + rng.normal(size=(n_seeds, 3)), offset + rng.normal(size=(n_seeds, 3))])
        d = np.linalg.norm(x[:, None] - x[None], axis=-1)
        res = permutation_test(d, n_seeds, blocks=blocks, rng=rng)
        p.append(res["p_value_randomised"])
    assert res["n_splits"] == 2 ** n_seeds and res["exhaustive"]
    assert kstest(p, "uniform").pvalue > 0.01 and abs(np.mean(np.array(p) < 0.1) - 0.1) < 0.06


@pytest.mark.slow   # default suite under 3 minutes; .ci/run runs it
def test_primary_score_finds_a_planted_family_and_stays_calibrated_on_the_null():
    """scripts/power_simulation.py's families: a predictor of within-target tau 0.5 on 10 tasks is found in most
    families; pure noise is rejected at about the nominal rate."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("power_simulation", Path(__file__).parents[1] / "scripts" /
                                                  "power_simulation.py")
    sim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sim)
    assert sim.power(10, 12, "unstructured", False, reps=20, perms=49, seed=0) >= 0.8
    assert sim.power(10, 12, "unstructured", True, reps=40, perms=49, seed=1) <= 0.15
    assert sim.power(10, 12, "unstructured", False, reps=20, perms=49, seed=2, test="beyond") >= 0.8


def test_loto_needs_both_verdicts():
    from rgnet.universality.scoring import loto_balanced_accuracy

    t = np.zeros((4, 4))
    np.fill_diagonal(t, np.nan)
    assert np.isnan(loto_balanced_accuracy(np.arange(16.0).reshape(4, 4), t))


def test_tau_difference_uses_the_same_task_draws_for_both_predictors():
    from rgnet.universality.scoring import tau_difference, weighted_tau

    rng = np.random.default_rng(3)
    gap = rng.normal(size=(8, 8))
    good, noisy = gap.copy(), gap + rng.normal(scale=3.0, size=gap.shape)
    d, lo, hi = tau_difference(good, noisy, gap, n_boot=200)
    assert d == pytest.approx(weighted_tau(good, gap)[0] - weighted_tau(noisy, gap)[0]) and d > 0
    assert 0 < lo <= d <= hi
    assert tau_difference(noisy, noisy, gap, n_boot=50) == (0.0, 0.0, 0.0)   # same draws: no spread at all
