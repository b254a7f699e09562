"""The data side of a run: dataset -> splits -> train-only stats -> device loaders."""

from __future__ import annotations

import torch

from cnnlab.config.schema import DataConfig
from cnnlab.data import load_dataset
from cnnlab.data.augment import build_augmentations
from cnnlab.data.loader import DeviceLoader
from cnnlab.data.normalize import ChannelStats, fit_channel_stats
from cnnlab.data.splits import Splits, make_splits
from cnnlab.engine.precision import Precision


def load_splits(data: DataConfig) -> Splits:
    """Load the dataset and split it as the recipe says (val held out of train, seeded)."""
    dataset = load_dataset(data.name, data.root, **data.options)
    return make_splits(dataset, val_size=data.val_size, seed=data.split_seed,
                       classes=data.classes, train_limit=data.train_limit)


def prepare_splits(data: DataConfig) -> tuple[Splits, ChannelStats]:
    """The splits, and normalization fit on the train split only."""
    splits = load_splits(data)
    C = splits.train_images.shape[1]
    stats = fit_channel_stats(splits.train_images) if data.normalize else ChannelStats.identity(C)
    return splits, stats


def make_loaders(splits: Splits, stats: ChannelStats, data: DataConfig, precision: Precision,
                 generator: torch.Generator) -> dict[str, DeviceLoader]:
    """Train (shuffled, augmented), val and test loaders on the run's device."""
    common = dict(stats=stats, device=precision.device, channels_last=precision.channels_last)
    evaluation = dict(batch_size=data.eval_batch_size, **common)
    return {
        "train": DeviceLoader(splits.train_images, splits.train_labels, batch_size=data.batch_size,
                              augment=build_augmentations(data.augment), shuffle=True, generator=generator,
                              **common),
        "val": DeviceLoader(splits.val_images, splits.val_labels, **evaluation),
        "test": DeviceLoader(splits.test_images, splits.test_labels, **evaluation),
    }
