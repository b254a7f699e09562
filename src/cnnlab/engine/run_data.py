"""The run's batches: the splits as device-resident loaders, augmented for training."""

from __future__ import annotations

import torch

from cnnlab.config.schema import DataConfig
from cnnlab.data.augment import build_augmentations
from cnnlab.data.loader import DeviceLoader
from cnnlab.data.normalize import ChannelStats
from cnnlab.data.splits import Splits
from cnnlab.engine.precision import Precision


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
