import numpy as np
import pytest

from rgnet import TaskConfig
from rgnet.errors import ConfigError
from rgnet.tasks import load_task


def test_mnist1d_default_split_and_shapes():
    t = load_task(TaskConfig("mnist1d"))
    assert t.x_train.shape == (3500, 40) and t.x_val.shape == (500, 40) and t.x_test.shape == (1000, 40)
    assert t.x_train.dtype == np.float32 and t.y_train.dtype == np.int64
    assert set(np.unique(t.y_train)) == set(range(10)) and t.n_classes == 10
    assert t.summary()["n_val"] == 500 and len(t.fingerprint()) == 16


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


def test_mnist1d_leaves_global_numpy_rng_alone():
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    load_task(TaskConfig("mnist1d", {"seed": 99}))
    assert np.random.rand() == expected


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
