"""Transfer up to symmetry: input permutations from data, hidden-unit matching, aligned transfer branches."""

import ast
import hashlib
import json
from pathlib import Path

import h5netcdf
import numpy as np
import pytest
from conftest import small_config, tensors

import rgnet
from rgnet import align
from rgnet.align import (
    align_inputs,
    chance_iou,
    match_units,
    permute_mlp,
    planted_features,
    ticket_iou,
    true_permutation,
)
from rgnet.cli import main
from rgnet.config import TaskConfig
from rgnet.errors import ConfigError
from rgnet.imp.tickets import ticket_from_run
from rgnet.imp.transfer import target_config, transfer
from rgnet.store.writer import copy_run
from rgnet.tasks import input_order, load_task

LAYERS = ["fc1", "fc2", "fc3"]


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _group(path, group):
    """Variables of a summary group, or (``[<branch>/]tensors/<kind>``) the tensors of that kind."""
    if group.startswith("tensors/") or "/tensors/" in group:
        branch, _, kind = group.rpartition("tensors/")
        return tensors(path, kind, branch.rstrip("/") or None)
    with h5netcdf.File(path, "r") as f:
        return {k: np.asarray(v[...]) for k, v in f[group].variables.items()}


def _forward(state: dict, x: np.ndarray) -> np.ndarray:
    """The rgnet MLP (ReLU between Linear layers) in numpy, float64."""
    h = x.reshape(len(x), -1).astype(np.float64)
    for i, layer in enumerate(LAYERS):
        h = h @ state[f"{layer}.weight"].T.astype(np.float64) + state[f"{layer}.bias"]
        if i < len(LAYERS) - 1:
            h = np.maximum(h, 0)
    return h


# ------------------------------------------------------------------------------------------- estimation

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_permutation_is_recovered_from_unpaired_samples(seed):
    xs, xt, perm = planted_features(n=1000, d=40, seed=seed)
    r = align_inputs(xs, xt)
    np.testing.assert_array_equal(r.permutation.values, perm)
    assert bool(r.identifiable) and float(r.agreement) == 1 and r.stable.all()
    assert float(r.objective) > float(r.identity_objective)
    assert r.permutation.dims == ("feature",) and "long_name" in r.confidence.attrs


def test_structure_free_features_give_no_confidence():
    rng = np.random.default_rng(0)
    r = align_inputs(rng.standard_normal((2000, 20)), rng.standard_normal((2000, 20)))
    assert float(r.fit_z) > 5                        # the search fits noise in the samples it sees...
    assert abs(float(r.confidence)) < 3 and not bool(r.identifiable)   # ...which the held-out half does not share


@pytest.mark.parametrize("seed", [0, 1])
def test_a_permuted_support_on_independent_inputs_is_recovered_from_the_labels(seed):
    """Feature correlations carry nothing here; the class statistics find the support, and only the support is
    stable between the halves of the data."""
    xs, xt, ys, yt, perm = align.planted_support(seed=seed)
    r = align_inputs(xs, xt, ys, yt)
    support = perm < 10                                              # target features the labels read
    assert np.mean(r.permutation.values[support] == perm[support]) >= 0.9
    assert bool(r.identifiable)
    assert r.stable.values[support].mean() >= 0.9 and r.stable.values[~support].mean() < 0.3
    nothing = align_inputs(*align.planted_support(seed=seed, informative=False)[:4])
    assert not bool(nothing.identifiable) and float(nothing.confidence) < float(r.confidence) - 5


@pytest.mark.slow   # default suite under 3 minutes; .ci/run runs it
def test_mnist1d_shuffle_ground_truth_and_its_recovery_on_other_samples():
    order = input_order(TaskConfig("mnist1d", {"shuffle_seq": True}))
    state = np.random.get_state()
    plain = load_task(TaskConfig("mnist1d", {}))
    shuffled = load_task(TaskConfig("mnist1d", {"shuffle_seq": True}))
    assert np.array_equal(shuffled.x_train, plain.x_train[:, order])   # the generator's own permutation
    assert sorted(order) == list(range(40)) and (order != np.arange(40)).mean() > 0.9
    # another generator seed: other samples, same feature order as the unshuffled default
    other = load_task(TaskConfig("mnist1d", {"seed": 7}))
    truth = true_permutation(input_order(TaskConfig("mnist1d", {"seed": 7})), order)
    np.testing.assert_array_equal(truth, order)
    r = align_inputs(other.x_train, shuffled.x_train, other.y_train, shuffled.y_train)
    np.testing.assert_array_equal(r.permutation.values, truth)
    assert np.random.get_state()[1].tolist() == state[1].tolist()   # the global RNG is left alone


def test_different_input_sizes_are_one_sentence():
    with pytest.raises(ConfigError, match="input features differ: the source task has 40, the target task 30"):
        align_inputs(np.zeros((10, 40)), np.zeros((10, 30)))


# ------------------------------------------------------------------------------------------- hidden units

def _random_mlp(rng, sizes):
    return {**{f"fc{i + 1}.weight": rng.standard_normal((b, a)) for i, (a, b) in enumerate(zip(sizes, sizes[1:]))},
            **{f"fc{i + 1}.bias": rng.standard_normal(b) for i, b in enumerate(sizes[1:])}}


def test_weight_matching_recovers_planted_unit_permutations_and_keeps_the_function():
    rng = np.random.default_rng(0)
    a = _random_mlp(rng, [12, 30, 20, 5])
    p_in, planted = rng.permutation(12), [rng.permutation(30), rng.permutation(20)]
    # b is a with permuted units (and inputs) plus a little noise: matching must undo the permutation
    inv = [np.argsort(p) for p in planted]
    b = permute_mlp(a, LAYERS, np.argsort(p_in), inv)
    b = {k: v + 0.01 * rng.standard_normal(v.shape) for k, v in b.items()}
    perms = match_units([b[f"{x}.weight"] for x in LAYERS], [a[f"{x}.weight"] for x in LAYERS],
                        bias_a=[b[f"{x}.bias"] for x in LAYERS], bias_b=[a[f"{x}.bias"] for x in LAYERS],
                        input_perm=np.argsort(p_in))
    for got, want in zip(perms, inv):
        np.testing.assert_array_equal(got, want)
    # a permuted network computes the same function on correspondingly permuted inputs
    x = rng.standard_normal((7, 12))
    moved = permute_mlp(a, LAYERS, p_in, planted)
    np.testing.assert_allclose(_forward(moved, x[:, p_in]), _forward(a, x), rtol=1e-12, atol=1e-12)


def test_chance_iou():
    assert chance_iou(0.5, 0.5) == pytest.approx(0.5 / 1.5)
    rng = np.random.default_rng(0)
    ious = [align.iou(rng.random(20000) < 0.2, rng.random(20000) < 0.2) for _ in range(5)]
    assert np.mean(ious) == pytest.approx(0.2 / 1.8, abs=0.005)


def test_align_analysis_does_not_import_torch():
    tree = ast.parse(Path(align.__file__).read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = [a.name for n in top for a in n.names] + [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
    assert not any(name.split(".")[0] == "torch" or name.startswith("rgnet.imp") for name in names)


# ------------------------------------------------------------------------------------------- transfer

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("align")
    source = rgnet.record(small_config(), d / "default-s0.h5", progress=False)
    shuffled = rgnet.record(target_config(source, "mnist1d", {"shuffle_seq": True}), d / "shuffled-s0.h5",
                            progress=False)
    same = rgnet.record(small_config(seed=1), d / "default-s1.h5", progress=False)
    return source, shuffled, same


def test_ticket_iou_before_and_after_matching(runs):
    source, _, same = runs
    self_ = ticket_iou(source, source, by="trained")
    assert np.allclose(self_.iou_before, 1) and np.allclose(self_.iou_after, 1)
    r = ticket_iou(source, same, by="mask", n_null=3)
    assert r.sizes == {"level": 3, "layer": 4} and list(r.layer.values) == [*LAYERS, "all"]
    assert (r.iou_after.sel(layer="all") >= r.iou_before.sel(layer="all")).all()   # matching maximises overlap
    np.testing.assert_allclose(r.iou_chance.sel(layer="all"), r.density.sel(layer="all") /
                               (2 - r.density.sel(layer="all")), rtol=1e-6)
    t = ticket_iou(source, same, [1, 2], by="trained")
    np.testing.assert_array_equal(t.iou_null_after, t.iou_chance)


def test_aligned_ticket_is_permuted_mask_times_permuted_weights(runs):
    source, shuffled, _ = runs
    truth = input_order(TaskConfig("mnist1d", {"shuffle_seq": True}))
    g_in = transfer(source, shuffled, [1, 2], align="inputs", progress=False)
    g_iu = transfer(source, shuffled, [2], align="inputs+units", progress=False)
    assert g_in.endswith("_align_inputs") and g_iu.endswith("_align_inputs_units")
    with h5netcdf.File(shuffled, "r") as f:
        a_in, a_iu = dict(f[g_in].attrs), dict(f[g_iu].attrs)
    perm = np.array(json.loads(a_in["input_permutation"]))
    np.testing.assert_array_equal(perm, truth)                       # recovered from data alone
    assert json.loads(a_in["input_alignment"])["confidence"] > 10
    units = [np.array(v) for v in json.loads(a_iu["unit_permutations"]).values()]
    assert len(units) == 2 and all(sorted(u) == list(range(32)) for u in units)
    src_masks, src_rewind = _group(source, "tensors/mask"), _group(source, "tensors/rewind")
    for group, unit_perms in ((g_in, None), (g_iu, units)):
        masks, rewind = _group(shuffled, f"{group}/tensors/mask"), _group(shuffled, f"{group}/tensors/rewind")
        ticket = ticket_from_run(source, 2)
        want = permute_mlp({**ticket.masks, **ticket.weights}, LAYERS, perm, unit_perms)
        for x in LAYERS:
            np.testing.assert_array_equal(masks[x][2].astype(bool), want[x])
            np.testing.assert_array_equal(masks[x][2] * rewind[f"{x}.weight"], want[f"{x}.weight"])
        if unit_perms is None:
            np.testing.assert_array_equal(masks["fc1"][2].astype(bool), src_masks["fc1"][2][:, perm].astype(bool))
            np.testing.assert_array_equal(rewind["fc1.weight"], src_rewind["fc1.weight"][:, perm])
            np.testing.assert_array_equal(rewind["fc2.weight"], src_rewind["fc2.weight"])
        # the aligned ticket on shuffled inputs computes what the source ticket computes on the plain ones
        x = load_task(TaskConfig("mnist1d", {})).x_test[:50]
        moved = {k: rewind[k] for k in rewind} | {f"{n}.weight": want[f"{n}.weight"] for n in LAYERS}
        np.testing.assert_allclose(_forward(moved, x[:, truth]), _forward(ticket.weights, x), atol=1e-9)


def test_identity_alignment_reproduces_the_unaligned_branch_bit_for_bit(runs, tmp_path):
    source, _, same = runs
    target = tmp_path / "same.h5"
    copy_run(same, target)
    plain = transfer(source, target, [1, 2], progress=False)
    aligned = transfer(source, target, [1, 2], align="inputs", progress=False)
    assert aligned == plain + "_align_inputs"
    with h5netcdf.File(target, "r") as f:
        perm = json.loads(f[aligned].attrs["input_permutation"])
    assert perm == list(range(40))                                   # same task: the identity is found
    a, b = _group(target, plain), _group(target, aligned)
    assert set(a) == set(b)
    for k in set(a) - {"train_seconds"}:                             # wall-clock time is not a result
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)         # NaN == NaN, every bit else
    for sub in ("mask", "rewind", "trained"):
        x, y = _group(target, f"{plain}/tensors/{sub}"), _group(target, f"{aligned}/tensors/{sub}")
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=f"{sub}/{k}")


def test_aligned_transfer_resumes_with_its_stored_permutation(runs, tmp_path, monkeypatch):
    source, shuffled, _ = runs
    target = tmp_path / "t.h5"
    copy_run(shuffled, target)
    group = transfer(source, target, [1], align="inputs+units", progress=False)
    first = rgnet.open_run(target, group=group).sel(level=1).test_acc.item()

    def refuse(*a, **k):
        raise AssertionError("a resumed branch must reuse its stored permutation")

    monkeypatch.setattr("rgnet.imp.transfer.align_inputs", refuse)
    transfer(source, target, [1, 2], align="inputs+units", progress=False)
    ds = rgnet.open_run(target, group=group)
    assert list(ds.level.values) == [1, 2] and ds.sel(level=1).test_acc.item() == first
    transfer(source, target, [1], progress=False)
    m = rgnet.transfer_matrix([target])                               # aligned transfers are an arm of their own
    assert {"mnist1d", "mnist1d [aligned inputs+units]"} <= set(m.source.values)
    assert m.n_transfers.sel(source="mnist1d").sum() == 1
    assert m.n_transfers.sel(source="mnist1d [aligned inputs+units]").sum() == 2


def test_bad_alignment_input_is_one_sentence_and_leaves_the_target_alone(runs, tmp_path, capsys):
    source, shuffled, _ = runs
    narrow = rgnet.record(target_config(source, "teacher", {"input_dim": 30}), tmp_path / "narrow.h5",
                          progress=False)
    for target, align_value, words in ((narrow, "inputs", "input shapes differ"),
                                       (shuffled, "features", "--align must be one of none, inputs, inputs+units")):
        before = _sha(target)
        capsys.readouterr()
        assert main(["transfer", str(source), "--target", str(target), "--align", align_value, "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0] and "Traceback" not in err[0]
        assert _sha(target) == before
    fresh = tmp_path / "never.h5"
    assert main(["transfer", str(source), "--task", "mnist1d", "--target", str(fresh), "--align", "all"]) == 2
    assert not fresh.exists()                                        # refused before recording the target
    cnn = rgnet.record(small_config(model={"name": "cnn1d", "params": {"channels": 4}}), tmp_path / "cnn.h5",
                       progress=False)
    with pytest.raises(ConfigError, match="needs an MLP"):
        transfer(cnn, cnn, [1], align="inputs", progress=False)


def test_an_alignment_the_data_do_not_identify_is_refused_unless_asked(runs, tmp_path, capsys):
    """MNIST-1D against a teacher on independent inputs: no permutation carries one to the other."""
    source = runs[0]
    fresh = tmp_path / "teacher.h5"
    capsys.readouterr()
    assert main(["transfer", str(source), "--task", "teacher", "--target", str(fresh), "--align", "inputs"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not identifiable from the data" in err[0] and "--min-confidence 0" in err[0]
    assert not fresh.exists()                                        # refused before recording the target
    rgnet.record(target_config(source, "teacher", {}), fresh, progress=False)
    before = _sha(fresh)
    assert main(["transfer", str(source), "--target", str(fresh), "--align", "inputs", "--quiet"]) == 2
    assert _sha(fresh) == before                                     # nothing written
    assert main(["transfer", str(source), "--target", str(fresh), "--align", "inputs", "--levels", "1",
                 "--min-confidence", "0"]) == 0
    out = capsys.readouterr().out
    assert "NOT identifiable (aligned anyway)" in out
    with h5netcdf.File(fresh, "r") as f:
        stored = json.loads(f[f"branches/transfer_{rgnet.open_run(source).attrs['run_id']}_align_inputs"]
                            .attrs["input_alignment"])
    assert stored["identifiable"] is False and stored["confidence"] < 5 and stored["min_confidence"] == 0
