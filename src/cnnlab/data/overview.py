"""A look at a recipe's data before training: class balance per split, and a seeded sample of
augmented training images (fastai's ``show_batch``), as data for the CLI and the report to show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cnnlab.data.augment import build_augmentations
from cnnlab.data.splits import Splits

PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class ClassCount:
    """Images of one class in each split."""

    name: str
    counts: dict[str, int]  # train, val, test


def class_balance(splits: Splits) -> list[ClassCount]:
    """One row per class, in label order: its images in train, val and test."""
    K = splits.num_classes
    per_part = {part: np.bincount(getattr(splits, f"{part}_labels"), minlength=K) for part in PARTS}
    return [ClassCount(name, {part: int(per_part[part][k]) for part in PARTS}) for k, name in enumerate(splits.classes)]


def split_sizes(splits: Splits) -> dict[str, int]:
    return {part: int(len(getattr(splits, f"{part}_labels"))) for part in PARTS}


def imbalance(rows: Sequence[ClassCount], part: str = "train") -> float:
    """The largest class's images over the smallest's in ``part`` (1.0: balanced; inf: a class has none)."""
    counts = [r.counts[part] for r in rows]
    return max(counts) / min(counts) if min(counts) else float("inf")


def augmented_sample(splits: Splits, augment: Sequence[dict[str, Any]], count: int,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` training images drawn at random (``seed``) and augmented as a training batch is:
    uint8 (count, C, H, W) and their labels (count,). The same seed gives the same images."""
    generator = torch.Generator().manual_seed(seed)
    n = len(splits.train_labels)
    picked = torch.randperm(n, generator=generator)[: min(count, n)].sort().values.numpy()
    batch = torch.from_numpy(splits.train_images[picked])  # (count, C, H, W) uint8
    for op in build_augmentations(augment):
        batch = op(batch, generator)
    return batch.numpy(), splits.train_labels[picked]
