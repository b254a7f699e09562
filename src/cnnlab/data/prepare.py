"""The data side of a recipe: dataset -> splits -> normalization fit on the train split only."""

from __future__ import annotations

from cnnlab.config.schema import DataConfig
from cnnlab.data.augment import build_augmentations
from cnnlab.data.datasets import load_dataset
from cnnlab.data.normalize import ChannelStats, fit_channel_stats
from cnnlab.data.splits import Splits, make_splits


def load_splits(data: DataConfig) -> Splits:
    """Load the dataset and split it as the recipe says (val held out of train, seeded).

    Every data error is a one-line ``CnnlabError`` raised here: an explicit ``data.root`` that
    lacks the files, unreadable files, train and test of different shapes or bad labels
    (``ImageDataset`` checks them), split sizes that do not fit.
    """
    dataset = load_dataset(data.name, data.root, **data.options)
    return make_splits(dataset, val_size=data.val_size, seed=data.split_seed,
                       classes=data.classes, train_limit=data.train_limit)


def check_data(data: DataConfig) -> Splits:
    """Everything the data section of a recipe can get wrong, checked without training (for
    ``--print-config``): the splits as ``load_splits`` makes them, and the augmentation names
    and options. Returns the splits."""
    build_augmentations(data.augment)
    return load_splits(data)


def prepare_splits(data: DataConfig) -> tuple[Splits, ChannelStats]:
    """The splits, and normalization fit on the train split only (never val, never test)."""
    splits = load_splits(data)
    C = splits.train_images.shape[1]
    stats = fit_channel_stats(splits.train_images) if data.normalize else ChannelStats.identity(C)
    return splits, stats
