import gzip

import numpy as np
import pytest

from cnnlab.data import load_dataset
from cnnlab.data.idx import read_idx, write_idx
from cnnlab.errors import CnnlabError


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_roundtrip(tmp_path, suffix):
    images = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    write_idx(tmp_path / f"x{suffix}", images)
    np.testing.assert_array_equal(read_idx(tmp_path / f"x{suffix}"), images)


def test_header_is_the_published_format(tmp_path):
    # LeCun's spec: 0x00 0x00, type 0x08 (ubyte), ndim, then big-endian sizes.
    write_idx(tmp_path / "l", np.array([3, 1, 4], dtype=np.uint8))
    assert (tmp_path / "l").read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 3, 1, 4])


@pytest.mark.parametrize("data, message", [
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "bad magic"),
    (b"\x00\x00\x42\x01\x00\x00\x00\x01\x05", "unknown IDX type"),
    (b"\x00\x00\x08\x03\x00\x00", "truncated"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x04\x05", "holds 1 bytes"),
    (b"", "bad magic"),
])
def test_corrupt_files_say_what_is_wrong(tmp_path, data, message):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(data)
    with pytest.raises(CnnlabError, match=message) as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_broken_gzip_names_the_file(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x02\x01\x02")[:-6])
    with pytest.raises(CnnlabError, match="t10k-images"):
        read_idx(path)


def test_label_count_mismatch_is_reported(tmp_path, monkeypatch):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((4, 28, 28), np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([0, 12], np.uint8))
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path))
    with pytest.raises(CnnlabError, match="4 images but"):
        load_dataset("fashion_mnist")
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(CnnlabError, match=r"labels must lie in 0\.\.9"):
        load_dataset("fashion_mnist")


def test_real_fashion_mnist_has_the_published_counts(fashion_dir):
    data = load_dataset("fashion_mnist")
    assert data.train_images.shape == (60000, 1, 28, 28) and data.test_images.shape == (10000, 1, 28, 28)
    # Xiao et al. 2017: 6,000 training and 1,000 test images per class.
    assert np.bincount(data.train_labels).tolist() == [6000] * 10
    assert np.bincount(data.test_labels).tolist() == [1000] * 10
    assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot"
