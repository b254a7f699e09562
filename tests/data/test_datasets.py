"""Data errors never fall back silently: an explicit data.root is the one folder read, every
dataset is checked when it is built, and each records where it came from."""

import gzip
import shutil
import zlib

import numpy as np
import pytest
from sklearn.datasets import load_digits

from cnnlab.config.schema import DataConfig
from cnnlab.data import ImageDataset, load_dataset
from cnnlab.data.idx import read_idx, write_idx
from cnnlab.data.prepare import check_data
from cnnlab.errors import CnnlabError
from tests.data.test_cifar import _batches, write_binary_cifar, write_python_cifar

FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def write_fashion(folder, n_train=20, n_test=10, train_hw=(28, 28), test_hw=(28, 28), skip=(), suffix=".gz"):
    """Four small IDX files in the official names; labels cycle 0..9."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (n_train, *train_hw), dtype=np.uint8), (np.arange(n_train) % 10).astype(np.uint8),
              rng.integers(0, 256, (n_test, *test_hw), dtype=np.uint8), (np.arange(n_test) % 10).astype(np.uint8)]
    for stem, array in zip(FILES, arrays):
        if stem not in skip:
            write_idx(folder / (stem + suffix), array)
    return folder


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A complete Fashion-MNIST and CIFAR-10 on the search chain, which an explicit root must never reach."""
    chain = tmp_path / "chain"
    write_fashion(chain / "fashion-mnist", n_train=30)
    write_python_cifar(chain, _batches(seed=1))
    monkeypatch.setenv("CNNLAB_DATA", str(chain))
    monkeypatch.chdir(tmp_path)
    return chain


# --- an explicit data.root ---------------------------------------------------------------------

def test_a_missing_root_is_an_error_not_the_system_copy(tmp_path, elsewhere):
    with pytest.raises(CnnlabError, match=r"data.root .*missing/folder is not a folder; point it at the "
                                          r"Fashion-MNIST files, or leave data.root unset"):
        load_dataset("fashion_mnist", root=tmp_path / "missing" / "folder")


@pytest.mark.parametrize("layout", ["", "fashion-mnist", "FashionMNIST/raw"])
def test_a_root_lacking_one_idx_file_names_the_folder_and_the_file(tmp_path, elsewhere, layout):
    root = tmp_path / "mine"
    folder = write_fashion(root / layout, skip=["t10k-labels-idx1-ubyte"])
    with pytest.raises(CnnlabError) as err:
        load_dataset("fashion_mnist", root=root)
    message = str(err.value)
    assert message.startswith(f"data.root {root} holds no complete Fashion-MNIST: {folder} lacks "
                              "t10k-labels-idx1-ubyte[.gz] (also looked in ")
    assert "train-images" not in message and "\n" not in message


def test_an_empty_root_names_itself_and_all_four_files(tmp_path, elsewhere):
    (tmp_path / "mine").mkdir()
    with pytest.raises(CnnlabError, match=rf"holds no complete Fashion-MNIST: {tmp_path / 'mine'} lacks "
                                          r"train-images-idx3-ubyte\[.gz\], train-labels.*, t10k-images.*, t10k-labels"):
        load_dataset("fashion_mnist", root=tmp_path / "mine")


@pytest.mark.parametrize("layout", ["", "fashion-mnist", "FashionMNIST/raw"])
def test_a_complete_root_is_read_and_recorded_as_the_source(tmp_path, elsewhere, layout):
    folder = write_fashion(tmp_path / "mine" / layout, suffix="")
    data = load_dataset("fashion_mnist", root=tmp_path / "mine")
    assert data.source == str(folder) and len(data.train_labels) == 20  # not the chain's 30


def test_without_a_root_the_search_chain_stays(elsewhere):
    data = load_dataset("fashion_mnist")
    assert data.source == str(elsewhere / "fashion-mnist") and len(data.train_labels) == 30


def test_a_cifar_root_lacking_a_batch_names_it(tmp_path, elsewhere):
    folder = write_binary_cifar(tmp_path / "mine", _batches())
    (folder / "test_batch.bin").unlink()
    with pytest.raises(CnnlabError, match=rf"data.root {tmp_path / 'mine'} holds no complete CIFAR-10: "
                                          rf"{folder} lacks test_batch.bin \(also looked in"):
        load_dataset("cifar10", root=tmp_path / "mine")
    with pytest.raises(CnnlabError, match="nothing.* is not a folder"):
        load_dataset("cifar10", root=tmp_path / "nothing")


@pytest.mark.parametrize("writer", [write_python_cifar, write_binary_cifar])
def test_a_cifar_root_may_be_the_batch_folder_itself(tmp_path, elsewhere, writer):
    folder = writer(tmp_path / "mine", _batches())
    for root in (tmp_path / "mine", folder):
        data = load_dataset("cifar10", root=root)
        assert data.source == str(folder) and data.train_images.shape == (30, 3, 32, 32)


def test_cifar_without_a_root_reads_the_chain(elsewhere):
    assert load_dataset("cifar10").source == str(elsewhere / "cifar-10-batches-py")


@pytest.mark.parametrize("name", ["synthetic", "digits"])
def test_datasets_that_read_no_files_refuse_a_root(tmp_path, name):
    with pytest.raises(CnnlabError, match=rf"dataset '{name}' reads no files, but data.root is .*; remove data.root"):
        load_dataset(name, root=tmp_path)


def test_generated_and_bundled_datasets_say_so():
    assert load_dataset("synthetic", train_size=20, test_size=10).source == "generated"
    assert load_dataset("digits").source == "scikit-learn"


# --- corrupt files -----------------------------------------------------------------------------

def test_a_corrupt_deflate_stream_is_one_line(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, np.random.default_rng(0).integers(0, 4, (20, 28, 28)).astype(np.uint8))  # compressible
    body = bytearray(path.read_bytes())
    middle = len(body) // 2
    body[middle : middle + 4] = bytes(b ^ 0xFF for b in body[middle : middle + 4])
    path.write_bytes(bytes(body))
    with pytest.raises(zlib.error):  # the failure the reader must turn into a CnnlabError
        gzip.decompress(bytes(body))
    with pytest.raises(CnnlabError, match=r"cannot read IDX file .*train-images-idx3-ubyte.gz: .*; download it again"):
        read_idx(path)


# --- every dataset is checked when it is built -------------------------------------------------

def test_train_and_test_of_different_shapes_fail_at_load(tmp_path):
    write_fashion(tmp_path / "fashion-mnist", test_hw=(32, 32))
    with pytest.raises(CnnlabError) as err:
        load_dataset("fashion_mnist", root=tmp_path)
    assert str(err.value) == (f"dataset 'fashion_mnist' ({tmp_path / 'fashion-mnist'}): train images are 1x28x28 "
                              "but test images are 1x32x32; every part must have one shape (C x H x W)")


def parts(**change):
    rng = np.random.default_rng(0)
    kwargs = dict(name="toy", train_images=rng.integers(0, 256, (6, 3, 4, 4), dtype=np.uint8),
                  train_labels=np.array([0, 1, 2, 0, 1, 2]), test_images=np.zeros((2, 3, 4, 4), np.uint8),
                  test_labels=np.array([1, 2]), classes=("a", "b", "c"), source="memory")
    kwargs.update(change)
    return kwargs


@pytest.mark.parametrize("change, message", [
    (dict(test_images=np.zeros((2, 1, 4, 4), np.uint8)), "train images are 3x4x4 but test images are 1x4x4"),
    (dict(train_images=np.zeros((6, 3, 4, 4), np.float32)), "train images must be uint8 of shape (N, C, H, W), got "
                                                            "float32"),
    (dict(test_images=np.zeros((2, 4, 4), np.uint8)), "test images must be uint8 of shape (N, C, H, W), got uint8 "
                                                      "(2, 4, 4)"),
    (dict(train_labels=np.zeros((6, 1), np.int64)), "train labels must be integers of shape (N,), got int64 (6, 1)"),
    (dict(test_labels=np.array([0.0, 1.0])), "test labels must be integers of shape (N,), got float64"),
    (dict(train_labels=np.array([0, 1, 2])), "train has 6 images but 3 labels"),
    (dict(test_labels=np.array([0, 3])), "test labels must lie in 0..2 (one per class), found 0..3"),
    (dict(train_labels=np.array([0, 1, 2, 0, 1, -1])), "train labels must lie in 0..2 (one per class), found -1..2"),
    (dict(classes=()), "has no classes"),
])
def test_a_dataset_is_checked_when_built(change, message):
    with pytest.raises(CnnlabError) as err:
        ImageDataset(**parts(**change))
    assert str(err.value).startswith("dataset 'toy' (memory)") and message in str(err.value)


def test_a_good_dataset_builds():
    data = ImageDataset(**parts())
    assert data.image_shape == (3, 4, 4) and data.num_classes == 3 and data.source == "memory"


@pytest.mark.parametrize("options, message", [
    ({"shape": [1, 28]}, "option 'shape' must be three sizes C, H, W of at least 1"),
    ({"shape": [1, 0, 8]}, "option 'shape' must be three sizes"),
    ({"num_classes": 1}, "option 'num_classes' must be a whole number of at least 2, got 1"),
    ({"train_size": 0}, "option 'train_size' must be a whole number of at least 1, got 0"),
    ({"test_size": -1}, "option 'test_size' must be a whole number of at least 1, got -1"),
    ({"noise": -0.5}, "option 'noise' must be a number >= 0, got -0.5"),
    ({"seed": -1}, "option 'seed' must be a whole number >= 0, got -1"),
])
def test_synthetic_options_are_checked(options, message):
    with pytest.raises(CnnlabError, match=f"dataset 'synthetic' {message}"):
        load_dataset("synthetic", **options)


@pytest.mark.parametrize("fraction", [0.2, 0.35])
def test_digits_are_scikit_learns_images_with_a_stratified_test_part(fraction):
    bunch = load_digits()  # 1,797 8x8 images of values 0..16
    data = load_dataset("digits", test_fraction=fraction)
    for c in range(10):  # each class holds out round(fraction * its count) images as test
        assert (data.test_labels == c).sum() == round(fraction * (bunch.target == c).sum())
    # Every scikit-learn image is there exactly once, in train or test, scaled 0..16 -> 0..255 with its label.
    pixels = np.minimum(bunch.images * 16, 255).astype(np.uint8)
    expected = sorted(p.tobytes() + bytes([t]) for p, t in zip(pixels, bunch.target))
    ours = [(x, y) for part in ("train", "test")
            for x, y in zip(getattr(data, f"{part}_images"), getattr(data, f"{part}_labels"))]
    assert sorted(x[0].tobytes() + bytes([y]) for x, y in ours) == expected


def test_digits_test_fraction_is_checked():
    with pytest.raises(CnnlabError, match=r"'test_fraction' must be in \(0, 1\), got 0"):
        load_dataset("digits", test_fraction=0)


# --- check_data: the data section, checked without training ------------------------------------

def test_check_data_returns_the_splits_and_catches_what_training_would_hit(tmp_path, elsewhere):
    splits = check_data(DataConfig(name="synthetic", options={"train_size": 50, "test_size": 10}, val_size=10))
    assert len(splits.train_labels) == 40 and len(splits.val_labels) == 10
    with pytest.raises(CnnlabError, match="unknown augmentation 'flip'"):
        check_data(DataConfig(name="synthetic", augment=[{"name": "flip"}]))
    with pytest.raises(CnnlabError, match=r"data.val_size 0.01 holds out no image of 50; hold out at least one"):
        check_data(DataConfig(name="synthetic", options={"train_size": 50, "test_size": 10}, val_size=0.01))
    with pytest.raises(CnnlabError, match="cannot hold out 5000 of 20"):
        check_data(DataConfig(root=str(write_fashion(tmp_path / "small"))))
    shutil.rmtree(tmp_path / "small")
    with pytest.raises(CnnlabError, match="small is not a folder"):
        check_data(DataConfig(root=str(tmp_path / "small")))
