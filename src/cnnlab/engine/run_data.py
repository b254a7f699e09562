"""The run's batches: the splits as device-resident loaders, augmented for training."""

from __future__ import annotations

import torch

from cnnlab.config.schema import DataConfig
from cnnlab.data.augment import build_augmentations
from cnnlab.data.loader import DeviceLoader
from cnnlab.data.normalize import Normalization
from cnnlab.data.splits import Splits
from cnnlab.engine.distributed import World, rank_batch, shard
from cnnlab.engine.precision import Precision


def make_loaders(splits: Splits, stats: Normalization, data: DataConfig, precision: Precision,
                 generator: torch.Generator, world: World = World()) -> dict[str, DeviceLoader]:
    """Train (shuffled, augmented), val and test loaders on the run's device; under torchrun the
    train loader holds this rank's shard and its share of the batch."""
    common = dict(stats=stats, device=precision.device, channels_last=precision.channels_last)
    evaluation = dict(batch_size=data.eval_batch_size, **common)
    train_images, train_labels = shard(splits.train_images, splits.train_labels, world)
    return {
        "train": DeviceLoader(train_images, train_labels, batch_size=rank_batch(data.batch_size, world),
                              augment=build_augmentations(data.augment), shuffle=True, generator=generator,
                              **common),
        "val": DeviceLoader(splits.val_images, splits.val_labels, **evaluation),
        "test": DeviceLoader(splits.test_images, splits.test_labels, **evaluation),
    }
