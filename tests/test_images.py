"""Image tasks read tiny files written in the real distribution formats (IDX, CIFAR python pickles)."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
from typing import ClassVar

import numpy as np
import pytest

import rgnet
from rgnet.config import TaskConfig
from rgnet.errors import ConfigError, DataError
from rgnet.tasks import load_task

IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(a: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: magic 0x0000 08 <ndim>, big-endian uint32 sizes, then the data."""
    return struct.pack(">BBBB", 0, 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def write_idx_set(d, n_train=30, n_test=10, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {IDX[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              IDX[1]: (np.arange(n_train) % 10).astype(np.uint8),
              IDX[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              IDX[3]: (np.arange(n_test)[::-1] % 10).astype(np.uint8)}
    d.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        data = idx_bytes(a)
        if gz:
            (d / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (d / name).write_bytes(data)
    return arrays


class Py2Pickler(pickle._Pickler):
    """Pickles as Python 2's cPickle wrote the original CIFAR files: every str as a py2 str (BINSTRING),
    globals by their NumPy 1 names (``numpy.core.multiarray._reconstruct``)."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def save_py2str(self, obj):
        b = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(b) < 256:
            head = pickle.SHORT_BINSTRING + bytes([len(b)])
        else:
            head = pickle.BINSTRING + struct.pack("<i", len(b))
        self.write(head + b)
        self.memoize(obj)

    def save_global(self, obj, name=None):
        name = name or obj.__qualname__
        module = "numpy.core.multiarray" if name == "_reconstruct" else obj.__module__
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)

    dispatch[str] = dispatch[bytes] = save_py2str
    dispatch[type] = save_global


def cifar_pickle(x_chw: np.ndarray, labels: dict, protocol="py2") -> bytes:
    """A CIFAR python batch: dict with b'batch_label', label lists, b'data' uint8 (N, 3072), b'filenames'."""
    d = {b"batch_label": b"training batch 1 of 5", **labels, b"data": x_chw.reshape(len(x_chw), 3072),
         b"filenames": [b"img_%d.png" % i for i in range(len(x_chw))]}
    if protocol == "py2":
        f = io.BytesIO()
        Py2Pickler(f, 2).dump(d)
        return f.getvalue()
    return pickle.dumps(d, protocol=protocol)


def write_cifar10(root, n_per_batch=6, n_test=8, seed=0, protocol="py2"):
    rng = np.random.default_rng(seed)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    xs, ys = [], []
    for i in range(1, 6):
        x = rng.integers(0, 256, (n_per_batch, 3, 32, 32), dtype=np.uint8)
        y = [int(v) for v in rng.integers(0, 10, n_per_batch)]
        (d / f"data_batch_{i}").write_bytes(cifar_pickle(x, {b"labels": y}, protocol))
        xs.append(x)
        ys += y
    xt = rng.integers(0, 256, (n_test, 3, 32, 32), dtype=np.uint8)
    yt = [int(v) for v in rng.integers(0, 10, n_test)]
    (d / "test_batch").write_bytes(cifar_pickle(xt, {b"labels": yt}, protocol))
    return np.concatenate(xs), np.array(ys), xt, np.array(yt)


def raw_params(**kw):
    return {"normalize": False, **kw}


@pytest.mark.parametrize("name,folder,gz", [("mnist", "mnist", False), ("mnist", "MNIST/raw", True),
                                            ("fashion_mnist", "FashionMNIST/raw", False),
                                            ("kmnist", "kmnist", True)])
def test_idx_tasks_load_shapes_and_pixels(tmp_path, name, folder, gz):
    a = write_idx_set(tmp_path / folder, gz=gz)
    imgs = a[IDX[0]]
    imgs[3, 5, 7] = 255                            # a known pixel in train image 3 (row 5, column 7)
    data = idx_bytes(imgs)
    path = tmp_path / folder / (IDX[0] + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)

    t = load_task(TaskConfig(name, raw_params(val_size=5, split_seed=1)), tmp_path)
    assert t.x_train.shape == (25, 1, 28, 28) and t.x_val.shape == (5, 1, 28, 28)
    assert t.x_test.shape == (10, 1, 28, 28)
    assert t.x_train.dtype == np.float32 and t.y_train.dtype == np.int64 and t.n_classes == 10
    assert t.in_shape == (1, 28, 28)
    np.testing.assert_array_equal(t.y_test, np.arange(10)[::-1] % 10)
    # every training example lands in train or val exactly once, pixels scaled to [0, 1]
    assert sorted(np.concatenate([t.y_train, t.y_val]).tolist()) == sorted((np.arange(30) % 10).tolist())
    both_x = np.concatenate([t.x_train, t.x_val])
    both_y = np.concatenate([t.y_train, t.y_val])
    k = np.flatnonzero(np.all(np.isclose(both_x[:, 0], imgs[3] / 255.0), axis=(1, 2)))
    assert len(k) == 1 and both_x[k[0], 0, 5, 7] == 1.0 and both_y[k[0]] == 3
    np.testing.assert_allclose(t.x_test[:, 0], a[IDX[2]] / 255.0, atol=1e-7)
    assert len(t.meta["source"]) == 4 and all(folder in s for s in t.meta["source"])


def test_idx_normalize_flatten_subset(tmp_path):
    write_idx_set(tmp_path / "mnist", n_train=40)
    t = load_task(TaskConfig("mnist", {"val_size": 10, "subset": 12, "flatten": True}), tmp_path)
    assert t.x_train.shape == (12, 784) and t.x_val.shape == (10, 784) and t.x_test.shape == (10, 784)
    assert abs(t.x_train.mean()) < 1e-5 and abs(t.x_train.std() - 1) < 1e-4
    assert len(t.meta["mean"]) == 1 and len(t.meta["std"]) == 1
    full = load_task(TaskConfig("mnist", {"val_size": 10}), tmp_path)
    np.testing.assert_array_equal(full.y_val, t.y_val)            # subset keeps the validation set
    np.testing.assert_array_equal(full.y_train[:12], t.y_train)   # ... and the first training examples


def test_idx_defaults_use_5000_validation(tmp_path):
    write_idx_set(tmp_path / "mnist", n_train=30)
    with pytest.raises(ConfigError, match="val_size=5000"):
        load_task(TaskConfig("mnist"), tmp_path)


def test_missing_files_name_what_goes_where(tmp_path, monkeypatch):
    monkeypatch.delenv("RGNET_DATA", raising=False)
    with pytest.raises(DataError) as e:
        load_task(TaskConfig("mnist"), tmp_path)
    msg = str(e.value)
    assert all(f"{f}(.gz)" in msg for f in IDX) and f"{tmp_path}/mnist/" in msg
    assert "--data-root" in msg and "RGNET_DATA" in msg and msg.count(". ") == 0

    with pytest.raises(DataError, match=r"no data root given.*<root>/cifar-10-batches-py/.*RGNET_DATA"):
        load_task(TaskConfig("cifar10"), None)
    with pytest.raises(DataError, match="does not exist"):
        load_task(TaskConfig("kmnist"), tmp_path / "nowhere")
    (tmp_path / "cifar-100-python").mkdir()
    (tmp_path / "cifar-100-python" / "train").write_bytes(b"")
    with pytest.raises(DataError, match="put train, test in"):
        load_task(TaskConfig("cifar100"), tmp_path)


def test_rgnet_data_env_is_the_default_root(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "KMNIST")
    monkeypatch.setenv("RGNET_DATA", str(tmp_path))
    assert load_task(TaskConfig("kmnist", {"val_size": 5})).x_train.shape == (25, 1, 28, 28)


def test_bad_idx_magic_and_size(tmp_path):
    write_idx_set(tmp_path / "mnist")
    p = tmp_path / "mnist" / IDX[1]
    good = p.read_bytes()
    p.write_bytes(b"\x00\x00\x08\x03" + good[4:])      # images magic on a labels file
    with pytest.raises(DataError, match=r"not an IDX file.*0x00000803.*expected 0x00000801"):
        load_task(TaskConfig("mnist", {"val_size": 5}), tmp_path)
    p.write_bytes(good[:-1])
    with pytest.raises(DataError, match="implies"):
        load_task(TaskConfig("mnist", {"val_size": 5}), tmp_path)
    p.write_bytes(idx_bytes(np.zeros(7, np.uint8)))
    with pytest.raises(DataError, match="30 images but .* 7 labels"):
        load_task(TaskConfig("mnist", {"val_size": 5}), tmp_path)
    p.write_bytes(idx_bytes(np.full(30, 10, np.uint8)))
    with pytest.raises(DataError, match="outside 0..9"):
        load_task(TaskConfig("mnist", {"val_size": 5}), tmp_path)
    (tmp_path / "mnist" / IDX[0]).unlink()
    (tmp_path / "mnist" / f"{IDX[0]}.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="cannot read"):
        load_task(TaskConfig("mnist", {"val_size": 5}), tmp_path)


@pytest.mark.parametrize("protocol", ["py2", 2, 4, 5])   # the original files, and re-pickled ones
def test_cifar10_pixels_and_labels(tmp_path, protocol):
    _, y, xt, yt = write_cifar10(tmp_path, protocol=protocol)
    t = load_task(TaskConfig("cifar10", raw_params(val_size=5, flatten=False)), tmp_path)
    assert t.x_train.shape == (25, 3, 32, 32) and t.x_val.shape == (5, 3, 32, 32)
    assert t.x_test.shape == (8, 3, 32, 32) and t.n_classes == 10 and t.y_test.dtype == np.int64
    np.testing.assert_array_equal(t.y_test, yt)
    # row layout: 1024 red, then 1024 green, then 1024 blue values, each plane row-major
    row = xt[2].reshape(3072)
    c, h, w = 1, 4, 9
    assert t.x_test[2, c, h, w] == np.float32(row[1024 * c + 32 * h + w] / 255.0)
    np.testing.assert_allclose(t.x_test, xt / 255.0, atol=1e-7)
    assert sorted(np.concatenate([t.y_train, t.y_val]).tolist()) == sorted(y.tolist())
    assert [s.rsplit("/", 1)[1] for s in t.meta["source"]] == [f"data_batch_{i}" for i in range(1, 6)] + [
        "test_batch"]


def test_cifar10_normalized_per_channel(tmp_path):
    write_cifar10(tmp_path)
    t = load_task(TaskConfig("cifar10", {"val_size": 5, "flatten": True}), tmp_path)
    assert t.x_train.shape == (25, 3072)
    chans = t.x_train.reshape(25, 3, -1)
    np.testing.assert_allclose(chans.mean(axis=(0, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(chans.std(axis=(0, 2)), 1, atol=1e-4)
    assert len(t.meta["mean"]) == 3


def test_cifar100_fine_and_coarse(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    files = {}
    for name, n in (("train", 20), ("test", 6)):
        x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        fine, coarse = [int(v) for v in rng.integers(0, 100, n)], [int(v) for v in rng.integers(0, 20, n)]
        (d / name).write_bytes(cifar_pickle(x, {b"fine_labels": fine, b"coarse_labels": coarse}))
        files[name] = (x, fine, coarse)
    t = load_task(TaskConfig("cifar100", {"val_size": 4}), tmp_path)
    assert t.n_classes == 100 and t.x_train.shape == (16, 3, 32, 32) and t.meta["labels"] == "fine"
    np.testing.assert_array_equal(t.y_test, files["test"][1])
    t = load_task(TaskConfig("cifar100", {"val_size": 4, "labels": "coarse"}), tmp_path)
    assert t.n_classes == 20
    np.testing.assert_array_equal(t.y_test, files["test"][2])
    with pytest.raises(ConfigError, match="labels='medium'"):
        load_task(TaskConfig("cifar100", {"val_size": 4, "labels": "medium"}), tmp_path)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_cifar_unpickling_is_restricted_and_errors_are_data_errors(tmp_path, capsys):
    write_cifar10(tmp_path)
    p = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    p.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(DataError, match="not a CIFAR python batch.*builtins.print"):
        load_task(TaskConfig("cifar10", {"val_size": 5}), tmp_path)
    assert "pwned" not in capsys.readouterr().out
    p.write_bytes(b"garbage")
    with pytest.raises(DataError, match="data_batch_3 is not a CIFAR python batch"):
        load_task(TaskConfig("cifar10", {"val_size": 5}), tmp_path)
    p.write_bytes(pickle.dumps({b"data": np.zeros((3, 3072), np.uint8), b"labels": [0]}))
    with pytest.raises(DataError, match="expected uint8"):
        load_task(TaskConfig("cifar10", {"val_size": 5}), tmp_path)
    p.write_bytes(pickle.dumps({b"pixels": 1}))
    with pytest.raises(DataError, match="expected keys"):
        load_task(TaskConfig("cifar10", {"val_size": 5}), tmp_path)


def test_cli_records_imp_on_idx_files(tmp_path, capsys):
    """End to end: `rgnet record` on Fashion-MNIST IDX files (gzipped) with LeNet-300-100."""
    from rgnet.cli import main

    write_idx_set(tmp_path / "fashion_mnist", n_train=120, n_test=20, gz=True)
    out = tmp_path / "fm.h5"
    code = main(["record", "--task", "fashion_mnist", "--task-param", "val_size=20", "--model", "lenet_300_100",
                 "--levels", "2", "--steps", "10", "--eval-every", "5", "--batch-size", "20", "--scope",
                 "layerwise", "--output-fraction", "0.1", "--data-root", str(tmp_path), "--out", str(out),
                 "--no-tensors", "--quiet"])
    assert code == 0
    ds = rgnet.open_run(out)
    assert ds.sizes["level"] == 3 and list(ds.layer.values) == ["fc1", "fc2", "fc3"]
    assert 0.63 < float(ds.density[2]) < 0.65


def test_cli_records_imp_on_cifar10_files(tmp_path):
    from rgnet.cli import main

    write_cifar10(tmp_path, n_per_batch=8, n_test=8)
    out = tmp_path / "c10.h5"
    code = main(["record", "--task", "cifar10", "--task-param", "val_size=8", "--model", "conv2", "--levels", "1",
                 "--steps", "4", "--eval-every", "2", "--batch-size", "8", "--data-root", str(tmp_path),
                 "--out", str(out), "--no-tensors", "--quiet"])
    assert code == 0
    assert rgnet.open_run(out).sizes["level"] == 2
