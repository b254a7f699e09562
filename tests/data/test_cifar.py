"""CIFAR-10 loaders on small files the tests write in the official formats."""

import os
import pickle

import numpy as np
import pytest

from cnnlab.data import load_dataset
from cnnlab.data.cifar import read_python_batch
from cnnlab.errors import CnnlabError

N = 6  # images per batch file


def _batches(seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, 256, (N, 3072), dtype=np.uint8), rng.integers(0, 10, N).tolist()) for _ in range(6)]


def write_python_cifar(root, batches):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name, (data, labels) in zip(names, batches):
        # The official files are Python 2 pickles of dicts with byte-string keys.
        record = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                  b"filenames": [b"img%d.png" % i for i in range(N)]}
        (folder / name).write_bytes(pickle.dumps(record, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"airplane"]}, protocol=2))
    return folder


def write_binary_cifar(root, batches):
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name, (data, labels) in zip(names, batches):
        records = np.concatenate([np.array(labels, np.uint8)[:, None], data], axis=1)  # (N, 1 + 3072)
        records.tofile(folder / name)
    return folder


@pytest.mark.parametrize("writer", [write_python_cifar, write_binary_cifar])
def test_both_official_formats_load_the_same_images(tmp_path, monkeypatch, writer):
    batches = _batches()
    writer(tmp_path, batches)
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path))
    data = load_dataset("cifar10")
    assert data.train_images.shape == (5 * N, 3, 32, 32) and data.test_images.shape == (N, 3, 32, 32)
    # Row layout of the files: 1024 red, then 1024 green, then 1024 blue values, row-major.
    first = batches[0][0][0]
    np.testing.assert_array_equal(data.train_images[0, 1], first[1024:2048].reshape(32, 32))
    np.testing.assert_array_equal(data.test_labels, batches[5][1])
    assert data.classes[3] == "cat"


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickle_with_code_is_refused(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Exploit(), b"labels": []}, protocol=2))
    with pytest.raises(CnnlabError, match="refusing to load .*system"):
        read_python_batch(path)


def test_corrupt_files_name_the_file(tmp_path, monkeypatch):
    batches = _batches()
    folder = write_binary_cifar(tmp_path / "bin", batches)
    (folder / "data_batch_3.bin").write_bytes(b"\x01" * 3000)
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "bin"))
    with pytest.raises(CnnlabError, match="data_batch_3.bin.*3073-byte"):
        load_dataset("cifar10")
    folder = write_python_cifar(tmp_path / "py", batches)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "py"))
    with pytest.raises(CnnlabError, match=r"test_batch: 'data' must be uint8 of shape \(N, 3072\)"):
        load_dataset("cifar10")


def test_missing_cifar_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CnnlabError, match="CIFAR-10 not found.*cifar-10-python.tar.gz"):
        load_dataset("cifar10")
