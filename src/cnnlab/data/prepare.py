"""The data side of a recipe: dataset -> splits -> normalization fit on the train split only."""

from __future__ import annotations

from cnnlab.config.schema import DataConfig
from cnnlab.data.datasets import load_dataset
from cnnlab.data.normalize import ChannelStats, fit_channel_stats
from cnnlab.data.splits import Splits, make_splits


def load_splits(data: DataConfig) -> Splits:
    """Load the dataset and split it as the recipe says (val held out of train, seeded)."""
    dataset = load_dataset(data.name, data.root, **data.options)
    return make_splits(dataset, val_size=data.val_size, seed=data.split_seed,
                       classes=data.classes, train_limit=data.train_limit)


def prepare_splits(data: DataConfig) -> tuple[Splits, ChannelStats]:
    """The splits, and normalization fit on the train split only (never val, never test)."""
    splits = load_splits(data)
    C = splits.train_images.shape[1]
    stats = fit_channel_stats(splits.train_images) if data.normalize else ChannelStats.identity(C)
    return splits, stats
