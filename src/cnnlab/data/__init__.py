"""Data: dataset registry, splits, train-only normalization and device-resident batches."""

from cnnlab.data import cifar  # noqa: F401  (registers cifar10)
from cnnlab.data import imagefolder  # noqa: F401  (registers imagefolder)
from cnnlab.data.datasets import DATASETS, ImageDataset, load_dataset

__all__ = ["DATASETS", "ImageDataset", "load_dataset"]
