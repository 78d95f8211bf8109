"""Image datasets read from their standard distribution files with numpy only (no torchvision, no download).

* ``mnist``, ``fashion_mnist``, ``kmnist``: the four IDX files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each plain or ``.gz``)
  in ``<data_root>/<name>/`` or torchvision's ``<data_root>/<Name>/raw/``.
* ``cifar10``: the python batches in ``<data_root>/cifar-10-batches-py/``.
* ``cifar100``: the python ``train`` and ``test`` files in ``<data_root>/cifar-100-python/``.

Images come as float32 ``(C, H, W)`` (or flattened), scaled to [0, 1] and, by default, standardised per
channel with the mean and std of the training part (after the validation set is carved out). The
validation set is a seeded random subset of the official training set; ``subset=N`` then keeps only the
first N remaining training examples, so the validation and test sets do not change with N.
"""

from __future__ import annotations

import codecs
import gzip
import pickle
from pathlib import Path

import numpy as np

from rgnet.errors import ConfigError, DataError
from rgnet.tasks.registry import Task, non_negative, positive, register, split_validation

COMMON = {"val_size": 5000, "split_seed": 0, "normalize": True, "flatten": False, "subset": 0}
RANGES = {"val_size": (positive, ">= 1"), "split_seed": (non_negative, ">= 0"),
          "subset": (non_negative, "0 (all) or a positive number of training examples")}
COMMON_DOC = ("val_size: validation examples carved from train; split_seed: seed of that split; "
              "normalize: per-channel standardisation with training-set mean/std (else pixels in [0, 1]); "
              "flatten: (C*H*W,) instead of (C, H, W); "
              "subset: keep only the first N training examples (0 = all)")

# ----------------------------------------------------------------------------------------------- IDX (MNIST)

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")
IDX_SETS = {  # task name: (display name, folder names searched, in order)
    "mnist": ("MNIST", ("mnist", "MNIST")),
    "fashion_mnist": ("Fashion-MNIST", ("fashion_mnist", "FashionMNIST", "fashion-mnist")),
    "kmnist": ("KMNIST", ("kmnist", "KMNIST")),
}
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file (plain or gzipped) as an array; its magic number must declare ``ndim`` dimensions.

    The format: two zero bytes, a type code (0x08 = uint8), the number of dimensions, then each dimension
    as a big-endian uint32, then the data in C order.
    """
    hint = "replace it with a fresh copy of the original file"
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read {path} ({e}); {hint}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES or raw[3] != ndim:
        magic = raw[:4].hex() or "empty"
        raise DataError(f"{path} is not an IDX file with {ndim} dimension(s) (magic number 0x{magic}, "
                        f"expected 0x0000080{ndim}); {hint}")
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise DataError(f"{path} is truncated inside its IDX header; {hint}")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    expected = head + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{path} has {len(raw)} bytes but its IDX header {shape} implies {expected}; {hint}")
    return np.frombuffer(raw, dtype, offset=head).reshape(shape)


def _find_idx_dir(root: Path | None, folders: tuple[str, ...]) -> tuple[Path | None, list[Path]]:
    """The first folder holding all four IDX files, and the files it holds (paths, plain preferred)."""
    if root is None:
        return None, []
    for folder in folders:
        for d in (root / folder, root / folder / "raw"):
            paths = [next((p for p in (d / f, d / f"{f}.gz") if p.is_file()), None) for f in IDX_FILES]
            if all(paths):
                return d, paths
    return None, []


def _missing(title: str, what: str, where: str, root: Path | None) -> DataError:
    if root is None:
        why, hint = " (no data root given)", "pass --data-root <root>"
    else:
        why = "" if root.is_dir() else f" (data root {root} does not exist)"
        hint = f"pass --data-root {root}"
    return DataError(f"{title} files not found{why}: put {what} in {where} and {hint} or set RGNET_DATA")


def _load_idx(name: str, root: Path | None):
    title, folders = IDX_SETS[name]
    d, paths = _find_idx_dir(root, folders)
    if d is None:
        where = f"{root if root is not None else '<root>'}/{folders[0]}/"
        raise _missing(title, ", ".join(f"{f}(.gz)" for f in IDX_FILES), where, root)
    x_tr, y_tr, x_te, y_te = (read_idx(p, 3 if "images" in p.name else 1) for p in paths)
    for x, y, px, py in ((x_tr, y_tr, paths[0], paths[1]), (x_te, y_te, paths[2], paths[3])):
        if x.dtype != np.uint8:
            raise DataError(f"{px} holds {x.dtype} pixels, not uint8; replace it with a fresh copy")
        if len(x) != len(y):
            raise DataError(f"{px} holds {len(x)} images but {py} holds {len(y)} labels; "
                            f"replace them with fresh copies of the original files")
    return x_tr[:, None], y_tr, x_te[:, None], y_te, 10, [str(p) for p in paths]


# ------------------------------------------------------------------------------------------- CIFAR pickles

def _latin1_encode(text: str, encoding: str) -> bytes:
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing to decode text with codec {encoding!r}")
    return codecs.encode(text, encoding)


_reconstruct = np.zeros(1).__reduce_ex__(2)[0]   # numpy's array reconstructors, wherever they live
_frombuffer = np.zeros(1).__reduce_ex__(5)[0]
_SAFE_GLOBALS = {  # the only globals a CIFAR batch may name (original py2 files, and re-pickled ones)
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,   # how Python 3 writes bytes at pickle protocol 2
}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds only plain containers and numpy arrays: never runs arbitrary code."""

    def find_class(self, module, name):
        fn = _SAFE_GLOBALS.get((module, name))
        if fn is None:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return fn


def read_cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR python batch: ``(images uint8 (N, 3, 32, 32), labels int64 (N,))``.

    A batch is a pickled dict with ``b"data"``, a uint8 ``(N, 3072)`` array whose rows hold the red, green
    and blue 32x32 planes in row-major order, and the labels under ``label_key`` as a list of ints.
    """
    hint = "replace it with a fresh copy of the original file"
    try:
        with open(path, "rb") as f:
            d = _SafeUnpickler(f, encoding="bytes").load()
    except OSError as e:
        raise DataError(f"cannot read {path} ({e}); {hint}") from None
    except Exception as e:  # noqa: BLE001  (any unpickling failure: truncated, not a pickle, bad global)
        raise DataError(f"{path} is not a CIFAR python batch ({type(e).__name__}: {e}); {hint}") from None
    if not isinstance(d, dict) or b"data" not in d or label_key not in d:
        keys = sorted(d) if isinstance(d, dict) else type(d).__name__
        raise DataError(f"{path} is not a CIFAR python batch (expected keys b'data' and {label_key!r}, "
                        f"found {keys}); {hint}")
    x, y = np.asarray(d[b"data"]), np.asarray(d[label_key], dtype=np.int64)
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072 or len(x) != len(y):
        raise DataError(f"{path} holds data of dtype {x.dtype} and shape {x.shape} with {len(y)} labels, "
                        f"expected uint8 (N, 3072) with N labels; {hint}")
    return x.reshape(-1, 3, 32, 32), y


CIFAR_SETS = {  # task name: (display name, folder, train files, test files)
    "cifar10": ("CIFAR-10", "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)),
                ("test_batch",)),
    "cifar100": ("CIFAR-100", "cifar-100-python", ("train",), ("test",)),
}


def _load_cifar(name: str, root: Path | None, labels: str = "fine"):
    title, folder, train_files, test_files = CIFAR_SETS[name]
    if name == "cifar10":
        key, n_classes = b"labels", 10
    elif labels in ("fine", "coarse"):
        key, n_classes = (b"fine_labels", 100) if labels == "fine" else (b"coarse_labels", 20)
    else:
        raise ConfigError(f"labels={labels!r} is not valid for cifar100; use 'fine' or 'coarse'")
    d = root / folder if root is not None else None
    if d is None or not all((d / f).is_file() for f in train_files + test_files):
        where = f"{root if root is not None else '<root>'}/{folder}/"
        raise _missing(title, ", ".join(train_files + test_files), where, root)
    tr = [read_cifar_batch(d / f, key) for f in train_files]
    te = [read_cifar_batch(d / f, key) for f in test_files]
    x_tr, y_tr = np.concatenate([a for a, _ in tr]), np.concatenate([b for _, b in tr])
    x_te, y_te = np.concatenate([a for a, _ in te]), np.concatenate([b for _, b in te])
    return x_tr, y_tr, x_te, y_te, n_classes, [str(d / f) for f in train_files + test_files]


# ----------------------------------------------------------------------------------------- common pipeline

def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean and std (float64, in units of pixel / 255) of uint8 images ``(N, C, H, W)``."""
    v = np.arange(256) / 255.0
    hist = np.stack([np.bincount(x[:, c].ravel(), minlength=256) for c in range(x.shape[1])]) / x[:, 0].size
    mean = hist @ v
    std = np.sqrt(np.maximum(hist @ v**2 - mean**2, 0.0))
    return mean, np.where(std > 0, std, 1.0)


def _make_task(name, raw, val_size, split_seed, normalize, flatten, subset, **meta) -> Task:
    """Split, subset, scale and (optionally) standardise raw uint8 ``(N, C, H, W)`` images into a Task."""
    x_tr, y_tr, x_te, y_te, n_classes, source = raw
    for y, which in ((y_tr, "training"), (y_te, "test")):
        if len(y) and not 0 <= y.min() <= y.max() < n_classes:
            raise DataError(f"{name} {which} labels range over {y.min()}..{y.max()}, "
                            f"outside 0..{n_classes - 1}; "
                            f"replace the files with fresh copies of the originals")
    if int(subset) < 0:
        raise ConfigError(f"subset={subset} must be 0 (all) or a positive number of training examples")
    y_tr, y_te = y_tr.astype(np.int64), y_te.astype(np.int64)
    x_tr, y_tr, x_val, y_val = split_validation(x_tr, y_tr, int(val_size), int(split_seed))
    if int(subset) > 0:
        x_tr, y_tr = x_tr[: int(subset)], y_tr[: int(subset)]
    xs = [x.astype(np.float32) for x in (x_tr, x_val, x_te)]
    shift, scale = np.zeros(x_tr.shape[1]), np.full(x_tr.shape[1], 255.0)   # x = (pixel - shift) / scale
    if normalize:
        mean, std = channel_stats(x_tr)
        shift, scale = 255 * mean, 255 * std
        meta.update(mean=[float(m) for m in mean], std=[float(s) for s in std])
    for x in xs:   # in place: a CIFAR training set is 0.6 GB as float32
        if normalize:
            x -= shift.astype(np.float32)[:, None, None]
        x /= scale.astype(np.float32)[:, None, None]
    if flatten:
        xs = [x.reshape(len(x), -1) for x in xs]
    x_tr, x_val, x_te = xs
    return Task(name, x_tr, y_tr, x_val, y_val, x_te, y_te, n_classes, meta={"source": source, **meta})


def _register_idx(name: str):
    title = IDX_SETS[name][0]

    @register(name, COMMON, doc=f"{title} from its IDX files; {COMMON_DOC}", needs_files=True, ranges=RANGES)
    def load(data_root: Path | None, **params) -> Task:
        return _make_task(name, _load_idx(name, data_root), **params)

    return load


for _name in IDX_SETS:
    _register_idx(_name)


@register("cifar10", COMMON, doc=f"CIFAR-10 from its python batches; {COMMON_DOC}", needs_files=True,
          ranges=RANGES)
def load_cifar10(data_root: Path | None, **params) -> Task:
    return _make_task("cifar10", _load_cifar("cifar10", data_root), **params)


@register("cifar100", {**COMMON, "labels": "fine"},
          doc=f"CIFAR-100 from its python files; labels: 'fine' (100 classes) or 'coarse' (20); {COMMON_DOC}",
          needs_files=True, ranges={**RANGES, "labels": (lambda v: v in ("fine", "coarse"), "fine or coarse")})
def load_cifar100(data_root: Path | None, labels: str = "fine", **params) -> Task:
    return _make_task("cifar100", _load_cifar("cifar100", data_root, labels), labels=labels, **params)
