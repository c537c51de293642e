"""The data loaders, on tiny files in MNIST's IDX and CIFAR-10's pickle formats written here."""
import gzip
import pickle
import struct

import numpy as np
import pytest

from autograder import data


def write_idx(path, array, gz=False):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + b"".join(struct.pack(">I", s) for s in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_idx_files(tmp_path, gz):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (3, 28, 28)), rng.integers(0, 10, 3)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images, gz)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, gz)
    x, y = data.load_mnist(tmp_path, "test")
    assert x.dtype == np.uint8 and np.array_equal(x, images) and np.array_equal(y, labels)


def test_mnist_names_the_missing_file(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 28, 28)))
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        data.load_mnist(tmp_path)


def test_idx_rejects_a_truncated_file(tmp_path):
    write_idx(tmp_path / "x", np.zeros((2, 4, 4)))
    (tmp_path / "x").write_bytes((tmp_path / "x").read_bytes()[:-3])
    with pytest.raises(ValueError, match="bytes of data"):
        data.read_idx(tmp_path / "x")


def write_cifar_batch(path, n, rng):
    batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}
    path.write_bytes(pickle.dumps(batch))
    return batch


def test_cifar10_reads_pickle_batches_channels_first(tmp_path):
    rng = np.random.default_rng(0)
    batches = [write_cifar_batch(tmp_path / f"data_batch_{i}", 2, rng) for i in range(1, 6)]
    x, y = data.load_cifar10(tmp_path)
    assert x.shape == (10, 3, 32, 32) and x.dtype == np.uint8 and y.shape == (10,)
    assert np.array_equal(x[2, 1].ravel(), batches[1][b"data"][0, 1024:2048])  # red, green, blue planes
    assert np.array_equal(y[:2], batches[0][b"labels"])


def test_cifar10_names_the_missing_file(tmp_path):
    write_cifar_batch(tmp_path / "data_batch_1", 1, np.random.default_rng(0))
    with pytest.raises(FileNotFoundError, match="data_batch_2"):
        data.load_cifar10(tmp_path)
    with pytest.raises(FileNotFoundError, match="test_batch"):
        data.load_cifar10(tmp_path, "test")


def test_digits_are_offline_and_shaped():
    x, y = data.load_digits()
    assert x.shape == (1797, 64) and y.shape == (1797,) and x.min() == 0 and x.max() == 16
    assert set(np.unique(y)) == set(range(10))
