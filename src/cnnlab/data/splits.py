"""Train / val / test splits: val is held out of the official train part with a seed.

The test part is never touched here: it is evaluated once, at the end of a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnlab.data.datasets import ImageDataset
from cnnlab.errors import CnnlabError


@dataclass(frozen=True)
class Splits:
    """The three parts a run uses, as uint8 (N, C, H, W) images and int64 labels."""

    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]
    val_indices: np.ndarray  # positions in the (class-filtered) official train part, for the run record
    source: str | None = None  # the folder or file the dataset was read from, for the run record
    notes: dict[str, Any] = field(default_factory=dict)  # the dataset's facts for data.json (files skipped, cache)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def stratified_holdout(labels: np.ndarray, size: float, seed: int) -> np.ndarray:
    """Indices of a held-out part with each class in proportion; ``size`` is a count or a fraction < 1."""
    n = len(labels)
    count = round(size * n) if 0 < size < 1 else int(size)
    if count < 0 or count >= n:
        raise CnnlabError(f"cannot hold out {count} of {n} training images; choose 0 < data.val_size < {n}")
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    classes, class_counts = np.unique(labels, return_counts=True)
    # Largest-remainder allocation: per-class shares that sum to exactly ``count``.
    share = class_counts * count / n
    take = np.floor(share).astype(int)
    take[np.argsort(share - take)[::-1][: count - take.sum()]] += 1
    picked = [rng.choice(np.flatnonzero(labels == c), k, replace=False) for c, k in zip(classes, take)]
    return np.sort(np.concatenate(picked)).astype(np.int64)


def select_classes(images: np.ndarray, labels: np.ndarray, keep: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Keep images whose label is in ``keep``; labels become their position in ``keep``."""
    lookup = np.full(max(int(labels.max(initial=0)), max(keep)) + 1, -1, dtype=np.int64)
    lookup[keep] = np.arange(len(keep))
    mask = np.isin(labels, keep)
    return images[mask], lookup[labels[mask]]


def limit_train(train_idx: np.ndarray, train_y: np.ndarray, train_limit: int | None, seed: int) -> np.ndarray:
    """``train_idx`` cut to a stratified ``train_limit`` of its images (seed + 1); all of them for None."""
    if train_limit is None:
        return train_idx
    if not 0 < train_limit <= len(train_idx):
        raise CnnlabError(f"data.train_limit must be in 1..{len(train_idx)}, got {train_limit}")
    if train_limit == len(train_idx):
        return train_idx
    return train_idx[stratified_holdout(train_y[train_idx], train_limit, seed + 1)]


def make_splits(
    dataset: ImageDataset,
    *,
    val_size: float,
    seed: int,
    classes: list[int] | None = None,
    train_limit: int | None = None,
) -> Splits:
    """Filter classes, hold out val from train (stratified, seeded), optionally subsample train."""
    train_x, train_y = dataset.train_images, dataset.train_labels
    test_x, test_y = dataset.test_images, dataset.test_labels
    names = dataset.classes
    if classes:
        bad = [c for c in classes if not 0 <= c < dataset.num_classes]
        if bad or len(set(classes)) != len(classes):
            raise CnnlabError(f"data.classes must be distinct labels in 0..{dataset.num_classes - 1}, got {classes}")
        train_x, train_y = select_classes(train_x, train_y, classes)
        test_x, test_y = select_classes(test_x, test_y, classes)
        names = tuple(dataset.classes[c] for c in classes)
    if dataset.val_images is not None:  # its own val part (an image folder's val/): data.val_size is not used
        val_x, val_y = dataset.val_images, dataset.val_labels
        if classes:
            val_x, val_y = select_classes(val_x, val_y, classes)
        if len(val_y) == 0:
            raise CnnlabError(f"the val part of {dataset.source} holds no image of the chosen classes")
        train_idx = limit_train(np.arange(len(train_y)), train_y, train_limit, seed)
        return Splits(train_x[train_idx], train_y[train_idx], val_x, val_y, test_x, test_y, names,
                      np.zeros(0, dtype=np.int64), dataset.source, dataset.notes)
    val_idx = stratified_holdout(train_y, val_size, seed)
    if val_idx.size == 0:  # the best checkpoint and early stopping are chosen on val: it cannot be empty
        raise CnnlabError(f"data.val_size {val_size} holds out no image of {len(train_y)}; hold out at least one "
                          "(a count such as 500, or a fraction such as 0.1)")
    keep = np.ones(len(train_y), dtype=bool)
    keep[val_idx] = False
    train_idx = limit_train(np.flatnonzero(keep), train_y, train_limit, seed)
    return Splits(train_x[train_idx], train_y[train_idx], train_x[val_idx], train_y[val_idx],
                  test_x, test_y, names, val_idx, dataset.source, dataset.notes)
