import numpy as np
import pytest

from cnnlab.data import load_dataset
from cnnlab.data.splits import make_splits, stratified_holdout
from cnnlab.errors import CnnlabError


def test_holdout_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(4), [100, 50, 30, 20])
    val = stratified_holdout(labels, 0.2, seed=3)
    assert len(val) == 40 and len(np.unique(val)) == 40
    assert np.bincount(labels[val]).tolist() == [20, 10, 6, 4]  # 20% of each class
    np.testing.assert_array_equal(val, stratified_holdout(labels, 0.2, seed=3))
    assert not np.array_equal(val, stratified_holdout(labels, 0.2, seed=4))


def test_val_comes_from_train_never_from_test():
    data = load_dataset("synthetic", train_size=300, test_size=100)
    splits = make_splits(data, val_size=50, seed=0)
    assert len(splits.val_labels) == 50 and len(splits.train_labels) == 250
    np.testing.assert_array_equal(splits.test_images, data.test_images)
    np.testing.assert_array_equal(splits.val_images, data.train_images[splits.val_indices])
    train_rows = {row.tobytes() for row in splits.train_images}
    assert not any(row.tobytes() in train_rows for row in splits.val_images)


def test_class_subset_is_renumbered_in_the_given_order():
    data = load_dataset("synthetic", train_size=400, test_size=200, num_classes=5)
    splits = make_splits(data, val_size=0.1, seed=0, classes=[4, 1])
    assert splits.classes == ("class4", "class1")
    assert set(splits.train_labels) == {0, 1}
    kept = data.test_labels[np.isin(data.test_labels, [4, 1])]
    np.testing.assert_array_equal(splits.test_labels, np.where(kept == 4, 0, 1))


def test_train_limit_subsamples_the_train_split_only():
    data = load_dataset("synthetic", train_size=1000, test_size=10)
    splits = make_splits(data, val_size=100, seed=0, train_limit=50)
    assert len(splits.train_labels) == 50 and len(splits.val_labels) == 100
    with pytest.raises(CnnlabError, match="train_limit"):
        make_splits(data, val_size=100, seed=0, train_limit=5000)


def test_train_limit_picks_stratified_from_the_train_split_alone():
    data = load_dataset("synthetic", train_size=1000, test_size=10)
    full = make_splits(data, val_size=100, seed=0)
    limited = make_splits(data, val_size=100, seed=0, train_limit=90)
    np.testing.assert_array_equal(limited.val_indices, full.val_indices)  # the same val split
    train = {image.tobytes(): label for image, label in zip(full.train_images, full.train_labels)}
    assert all(train.get(image.tobytes()) == label for image, label in zip(limited.train_images, limited.train_labels))
    shares = np.bincount(full.train_labels, minlength=10) * 90 / len(full.train_labels)
    assert (np.abs(np.bincount(limited.train_labels, minlength=10) - shares) < 1).all()  # largest remainder


def test_bad_sizes_are_user_errors():
    data = load_dataset("synthetic", train_size=100, test_size=10)
    with pytest.raises(CnnlabError, match="cannot hold out 100 of 100"):
        make_splits(data, val_size=100, seed=0)
    with pytest.raises(CnnlabError, match="data.classes"):
        make_splits(data, val_size=10, seed=0, classes=[0, 10])


def test_a_size_of_1_is_one_image_and_a_fraction_is_below_1():
    """``size`` is a count, or a fraction when 0 < size < 1 (val_size=1 holds out one image, not all)."""
    labels = np.repeat(np.arange(3), 10)
    assert len(stratified_holdout(labels, 1, seed=0)) == 1
    assert len(stratified_holdout(labels, 0.5, seed=0)) == 15
    assert len(stratified_holdout(labels, 2, seed=0)) == 2
    data = load_dataset("synthetic", train_size=100, test_size=10)
    splits = make_splits(data, val_size=1, seed=0)
    assert len(splits.val_labels) == 1 and len(splits.train_labels) == 99
