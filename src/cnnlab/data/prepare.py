"""The data side of a recipe: dataset -> splits -> normalization fit on the train split only."""

from __future__ import annotations

from dataclasses import replace

from cnnlab.config.schema import DataConfig
from cnnlab.data.augment import build_augmentations
from cnnlab.data.datasets import ImageDataset, load_dataset
from cnnlab.data.images import convert_channels, resize_images
from cnnlab.data.normalize import Normalization, fit_normalization
from cnnlab.data.splits import Splits, make_splits
from cnnlab.errors import CnnlabError


def load_splits(data: DataConfig) -> Splits:
    """Load the dataset and split it as the recipe says (val held out of train, seeded).

    Every data error is a one-line ``CnnlabError`` raised here: an explicit ``data.root`` that
    lacks the files, unreadable files, train and test of different shapes or bad labels
    (``ImageDataset`` checks them), split sizes that do not fit.
    """
    dataset = image_settings(load_dataset_as(data), data)
    return make_splits(dataset, val_size=data.val_size, seed=data.split_seed,
                       classes=data.classes, train_limit=data.train_limit)


IMAGE_KEYS = ("image_size", "channels", "resize", "skip_bad_files")  # DataConfig keys an image folder decodes with


def load_dataset_as(data: DataConfig) -> ImageDataset:
    """The recipe's dataset. An image folder decodes at ``data.image_size`` and ``data.channels``
    (each image once, cached); other datasets load as their files give them."""
    if data.name == "imagefolder":
        settings = {key: getattr(data, key) for key in IMAGE_KEYS}
        return load_dataset(data.name, data.root, **settings, **data.options)
    if data.skip_bad_files:
        raise CnnlabError(f"data.skip_bad_files is for image folders; dataset '{data.name}' reads no image files")
    return load_dataset(data.name, data.root, **data.options)


def image_settings(dataset: ImageDataset, data: DataConfig) -> ImageDataset:
    """``dataset`` at the recipe's ``image_size`` (resize or stretch) and ``channels``; itself when both
    already hold, as they do for an image folder, which decoded with them."""
    C, H, W = dataset.image_shape
    size = tuple(data.image_size) if data.image_size else (H, W)
    channels = data.channels or C
    if (channels, *size) == (C, H, W):
        return dataset

    return replace(dataset, **{f"{part}_images": resize_images(convert_channels(images, channels), size, data.resize)
                               for part, (images, _) in dataset.parts().items()})


def check_data(data: DataConfig) -> Splits:
    """Everything the data section of a recipe can get wrong, checked without training (for
    ``--print-config``): the splits as ``load_splits`` makes them, and the augmentation names
    and options. Returns the splits."""
    build_augmentations(data.augment)
    return load_splits(data)


def prepare_splits(data: DataConfig) -> tuple[Splits, Normalization]:
    """The splits, and ``data.normalize`` fit on the train split only (never val, never test)."""
    splits = load_splits(data)
    return splits, fit_normalization(data, splits.train_images)
