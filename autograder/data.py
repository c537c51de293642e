"""Data sets of the course: the digits (embedded, offline), MNIST and CIFAR-10 (a folder you give).

- :func:`load_digits`: scikit-learn's bundled 8x8 digits, read from the file scikit-learn
  ships (no network, and scikit-learn itself is not imported: a grading kernel stays light).
- :func:`load_mnist`: the four IDX files of MNIST (LeCun et al.), gzipped or not, as
  downloaded from any mirror: ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
  ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``.
- :func:`load_cifar10`: the "CIFAR-10 python version" folder ``cifar-10-batches-py``
  (``data_batch_1`` ... ``data_batch_5``, ``test_batch``: pickled dicts).

A missing file raises :class:`FileNotFoundError` naming the file and where it was looked for.
The book's chapter on preprocessing (book/preprocessing/images.md) says what to do with them.
"""
import gzip
import importlib.util
import os
import pathlib
import pickle

import numpy as np

MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
CIFAR10_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
# The element types of the IDX format (the third byte of the magic number).
IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_digits():
    """scikit-learn's digits: X (1797, 64) float64 pixel intensities in [0, 16] (8x8 images,
    row by row), y (1797,) int64 labels 0-9. Offline: read from scikit-learn's own file."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("load_digits reads the file scikit-learn ships: pip install scikit-learn")
    path = pathlib.Path(list(spec.submodule_search_locations)[0], "datasets", "data", "digits.csv.gz")
    data = np.loadtxt(path, delimiter=",")
    return data[:, :-1], data[:, -1].astype(np.int64)


def _find(folder, name, what, gz=True):
    folder = pathlib.Path(folder)
    for candidate in (folder / name, folder / f"{name}.gz") if gz else (folder / name,):
        if candidate.is_file():
            return candidate
    alternatives = f" (or {name}.gz)" if gz else ""
    raise FileNotFoundError(f"{what}: {name}{alternatives} is missing from {os.fspath(folder)!r}")


def read_idx(path):
    """An array from an IDX file (gzipped when its name ends in .gz)."""
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    offset = 4 + 4 * ndim
    count = int(np.prod(shape)) if shape else 0
    if len(raw) - offset != count * dtype.itemsize:
        raise ValueError(f"{path}: {len(raw) - offset} bytes of data for shape {shape} of {dtype}")
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def load_mnist(folder, split="train"):
    """MNIST from the IDX files in ``folder``: X (N, 28, 28) uint8, y (N,) uint8.

    split: "train" (60000 images) or "test" (10000).
    """
    if split not in MNIST_FILES:
        raise ValueError(f"split must be one of {sorted(MNIST_FILES)}, got {split!r}")
    images, labels = (read_idx(_find(folder, name, f"MNIST {split} set")) for name in MNIST_FILES[split])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"MNIST {split} set in {os.fspath(folder)!r}: images {images.shape} and labels "
                         f"{labels.shape} do not match")
    return images, labels


def load_cifar10(folder, split="train"):
    """CIFAR-10 from the python batches in ``folder`` (``cifar-10-batches-py``):
    X (N, 3, 32, 32) uint8 (channels first, as the batches store them), y (N,) int64.

    split: "train" (the five data batches, 50000 images) or "test" (10000).
    """
    if split not in CIFAR10_FILES:
        raise ValueError(f"split must be one of {sorted(CIFAR10_FILES)}, got {split!r}")
    xs, ys = [], []
    for name in CIFAR10_FILES[split]:
        # The batches are pickles, as the data set's authors distribute them: load only files you trust.
        with open(_find(folder, name, f"CIFAR-10 {split} set", gz=False), "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data, labels = batch[b"data"], batch[b"labels"]
        xs.append(np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(labels, dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)
