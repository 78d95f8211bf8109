import numpy as np
import pytest

from rgnet import TaskConfig
from rgnet.errors import ConfigError
from rgnet.tasks import load_task


def test_mnist1d_default_split_and_shapes():
    t = load_task(TaskConfig("mnist1d"))
    assert t.x_train.shape == (4000, 40) and t.x_val.shape == (1000, 40) and t.x_test.shape == (1000, 40)
    assert t.x_train.dtype == np.float32 and t.y_train.dtype == np.int64
    assert set(np.unique(t.y_train)) == set(range(10)) and t.n_classes == 10
    assert np.bincount(t.y_val).tolist() == [100] * 10  # balanced like the generator's own sets
    assert t.summary()["n_val"] == 1000 and len(t.fingerprint()) == 16


@pytest.mark.parametrize("params", [{}, {"shuffle_seq": True}, {"seed": 7, "shear_scale": 1.5}])
def test_mnist1d_train_and_test_are_the_published_split(params):
    """Train and test equal mnist1d.data.make_dataset's own output; validation is extra data from the same
    generator, in the same feature order and units, sharing no example with train or test."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    for k, v in params.items():
        setattr(args, k, v)
    ref = make_dataset(args)
    t = load_task(TaskConfig("mnist1d", params))
    np.testing.assert_array_equal(t.x_train, ref["x"].astype(np.float32))
    np.testing.assert_array_equal(t.x_test, ref["x_test"].astype(np.float32))
    np.testing.assert_array_equal(t.y_train, ref["y"])
    np.testing.assert_array_equal(t.y_test, ref["y_test"])
    seen = {row.tobytes() for row in np.concatenate([t.x_train, t.x_test])}
    assert not any(row.tobytes() in seen for row in t.x_val)
    assert abs(float(t.x_val.mean())) < 0.05 and abs(float(t.x_val.std()) - 1) < 0.05  # the same units


def test_mnist1d_family_members_differ_and_are_reproducible():
    base = load_task(TaskConfig("mnist1d"))
    again = load_task(TaskConfig("mnist1d"))
    assert base.fingerprint() == again.fingerprint()
    noisy = load_task(TaskConfig("mnist1d", {"corr_noise_scale": 0.6, "shear_scale": 1.5}))
    other_seed = load_task(TaskConfig("mnist1d", {"seed": 7}))
    shuffled = load_task(TaskConfig("mnist1d", {"shuffle_seq": True}))
    prints = {t.fingerprint() for t in (base, noisy, other_seed, shuffled)}
    assert len(prints) == 4
    # shuffling permutes features of the same examples
    np.testing.assert_allclose(np.sort(shuffled.x_test, 1), np.sort(base.x_test, 1), atol=1e-5)


def test_mnist1d_leaves_global_random_state_alone():
    import random

    np.random.seed(123)
    random.seed(5)
    expected = np.random.rand(), random.random()
    np.random.seed(123)
    random.seed(5)
    load_task(TaskConfig("mnist1d", {"seed": 99}))
    assert (np.random.rand(), random.random()) == expected


def test_teacher_task():
    t = load_task(TaskConfig("teacher", {"classes": 4, "input_dim": 12, "n_train": 300, "seed": 3}))
    assert t.x_train.shape == (300, 12) and t.n_classes == 4
    assert len(np.unique(t.y_train)) == 4
    assert load_task(TaskConfig("teacher", {"seed": 3})).fingerprint() != load_task(TaskConfig("teacher")).fingerprint()


def test_unknown_task_and_parameter():
    with pytest.raises(ConfigError, match="valid tasks are .*mnist1d"):
        load_task(TaskConfig("nope"))
    with pytest.raises(ConfigError, match="valid parameters are .*corr_noise_scale"):
        load_task(TaskConfig("mnist1d", {"noise": 1}))


def test_a_task_declares_its_input_permutations():
    """Symmetry comes from the task's declaration, never from a parameter's name."""
    from rgnet.config import TASK_DEFAULTS
    from rgnet.tasks import TASKS, input_order, register, symmetric

    plain, shuffled = TaskConfig("mnist1d", {}), TaskConfig("mnist1d", {"shuffle_seq": True})
    assert symmetric(plain, shuffled) == ["shuffle_seq"]
    assert symmetric(plain, TaskConfig("mnist1d", {"shuffle_seq": True, "shear_scale": 1.0})) is None
    assert symmetric(plain, TaskConfig("mnist1d", {"shuffle_seq": False})) is None   # the default: same task
    order = input_order(shuffled)
    assert sorted(order) == list(range(40)) and (order != np.arange(40)).any()
    assert input_order(TaskConfig("mnist", {})) is None                  # declares no permutation
    assert input_order(TaskConfig("teacher", {})).tolist() == list(range(40))   # declares one: identity here

    @register("_labels_task", {"shuffle_labels": False, "flip": False},
              input_permutations={"flip": lambda p: np.arange(3)[::-1] if p["flip"] else np.arange(3)})
    def _load(data_root=None, **params):
        raise AssertionError("not loaded")

    try:
        a = TaskConfig("_labels_task", {})
        assert symmetric(a, TaskConfig("_labels_task", {"shuffle_labels": True})) is None   # not declared
        assert symmetric(a, TaskConfig("_labels_task", {"flip": True})) == ["flip"]
        assert input_order(TaskConfig("_labels_task", {"flip": True})).tolist() == [2, 1, 0]
    finally:
        del TASKS["_labels_task"], TASK_DEFAULTS["_labels_task"]


def test_teacher_plants_what_matters_and_declares_its_permutation():
    """A teacher reads only its support; input_order_seed presents the same task with its inputs permuted;
    the defaults give the task they gave before the parameters existed."""
    from rgnet.tasks import input_order, symmetric

    assert load_task(TaskConfig("teacher", {})).fingerprint() == "4b8bd96828c72de0"   # as recorded in data/
    left = load_task(TaskConfig("teacher", {"support": 20, "seed": 1}))
    perm = load_task(TaskConfig("teacher", {"support": 20, "seed": 1, "input_order_seed": 1}))
    order = input_order(TaskConfig("teacher", {"input_order_seed": 1}))
    assert np.array_equal(perm.x_train, left.x_train[:, order]) and np.array_equal(perm.y_train, left.y_train)
    assert symmetric(TaskConfig("teacher", {"support": 20}), TaskConfig("teacher", {"support": 20,
                                                                                     "input_order_seed": 1}))
    # inputs outside the support carry nothing about the labels: a class's mean there is noise around 0
    y = left.y_train
    means = np.array([left.x_train[y == c].mean(0) for c in np.unique(y)])
    assert np.abs(means[:, 20:]).max() < 0.25 < np.abs(means[:, :20]).max()
    with pytest.raises(ConfigError, match="the teacher reads inputs 30..49, but there are 40"):
        load_task(TaskConfig("teacher", {"support": 20, "support_offset": 30}))


def test_swaps_exchange_nested_pairs_of_inputs():
    """``swaps`` rearranges which inputs carry what, graded: the data are the plain task's columns exchanged in
    disjoint pairs, tasks with more swaps contain those with fewer, and the permutation is declared (symmetry)."""
    from rgnet.errors import ConfigError
    from rgnet.tasks import input_order, symmetric

    small = {"num_samples": 200, "val_size": 50}
    plain = load_task(TaskConfig("mnist1d", small))
    orders = {k: input_order(TaskConfig("mnist1d", {"swaps": k})) for k in (0, 6, 12, 20)}
    for k, order in orders.items():
        assert (order != np.arange(40)).sum() == 2 * k and (order[order] == np.arange(40)).all()   # k pairs
    assert set(np.flatnonzero(orders[6] != np.arange(40))) <= set(np.flatnonzero(orders[12] != np.arange(40)))
    swapped = load_task(TaskConfig("mnist1d", {**small, "swaps": 6}))
    np.testing.assert_array_equal(swapped.x_train, plain.x_train[:, orders[6]])
    np.testing.assert_array_equal(swapped.x_val, plain.x_val[:, orders[6]])
    np.testing.assert_array_equal(swapped.y_test, plain.y_test)
    assert symmetric(TaskConfig("mnist1d", {}), TaskConfig("mnist1d", {"swaps": 6})) == ["swaps"]
    with pytest.raises(ConfigError, match="at most final_seq_length / 2"):
        load_task(TaskConfig("mnist1d", {**small, "swaps": 21}))
