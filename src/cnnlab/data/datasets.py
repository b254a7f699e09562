"""The dataset registry: every loader returns a whole dataset as uint8 NCHW arrays.

``load_dataset('fashion_mnist')`` -> ``ImageDataset`` with train and test images (N, C, H, W)
uint8 and labels (N,) int64. Splitting, normalization and batching happen later
(``cnnlab.data.splits``, ``normalize``, ``loader``), so every dataset goes through the same
pipeline. Loaders never download at run time except through torchvision where the network
allows it (``cifar10``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.data.idx import read_idx
from cnnlab.errors import CnnlabError
from cnnlab.registry import Registry, check_options


@dataclass(frozen=True)
class ImageDataset:
    """A dataset in memory, as the files give it: official train and test parts."""

    name: str
    train_images: np.ndarray  # (N, C, H, W) uint8
    train_labels: np.ndarray  # (N,) int64 in [0, num_classes)
    test_images: np.ndarray  # (M, C, H, W) uint8
    test_labels: np.ndarray  # (M,) int64
    classes: tuple[str, ...]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


DATASETS: Registry[Callable[..., ImageDataset]] = Registry("dataset")


def data_roots(root: str | Path | None = None) -> list[Path]:
    """Where datasets are looked for, in order: ``root``, ``$CNNLAB_DATA``, ``./data``."""
    roots = [Path(root)] if root else []
    if os.environ.get("CNNLAB_DATA"):
        roots.append(Path(os.environ["CNNLAB_DATA"]))
    roots.append(Path("data"))
    return roots


def load_dataset(name: str, root: str | Path | None = None, **options: Any) -> ImageDataset:
    """Load a registered dataset; ``options`` are the loader's keyword arguments."""
    loader = DATASETS.get(name)
    check_options(f"dataset '{name}'", loader, options, exclude=["root"])
    return loader(root=root, **options)


# --- Fashion-MNIST (Xiao et al. 2017): 60k train + 10k test, 1x28x28, 10 classes ----------------

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_FILES = {
    "train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte",
}
# Debian's dataset-fashion-mnist package installs the four .gz files here.
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
GET_FASHION = ("get it with `make data` (Debian: apt-get install dataset-fashion-mnist), "
               "or put the four IDX files in $CNNLAB_DATA/fashion-mnist or ./data/fashion-mnist")


def _find_idx_dir(candidates: list[Path]) -> Path | None:
    for folder in candidates:
        if all(_idx_file(folder, stem) for stem in FASHION_FILES.values()):
            return folder
    return None


def _idx_file(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def fashion_mnist_dir(root: str | Path | None = None) -> Path:
    """The folder that holds the four Fashion-MNIST IDX files, or a CnnlabError saying how to get them."""
    candidates = []
    for base in data_roots(root):
        # our own layout, torchvision's download layout, and files dropped straight into the root
        candidates += [base / "fashion-mnist", base / "FashionMNIST" / "raw", base]
    candidates.append(DEBIAN_FASHION_DIR)
    found = _find_idx_dir(candidates)
    if found is None:
        raise CnnlabError(f"Fashion-MNIST not found (looked in {', '.join(map(str, candidates))}); {GET_FASHION}")
    return found


@DATASETS.register()
def fashion_mnist(root: str | Path | None = None) -> ImageDataset:
    folder = fashion_mnist_dir(root)
    parts = {key: read_idx(_idx_file(folder, stem)) for key, stem in FASHION_FILES.items()}
    for part in ("train", "test"):
        images, labels = parts[f"{part}_images"], parts[f"{part}_labels"]
        path = _idx_file(folder, FASHION_FILES[f"{part}_images"])
        if images.ndim != 3 or images.dtype != np.uint8:
            raise CnnlabError(f"{path}: expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise CnnlabError(f"{folder}: {part} has {len(images)} images but {labels.shape} labels")
        if labels.size and (labels.min() < 0 or labels.max() >= len(FASHION_CLASSES)):
            raise CnnlabError(f"{folder}: {part} labels must lie in 0..9, found {labels.min()}..{labels.max()}")
    return ImageDataset(
        name="fashion_mnist",
        train_images=parts["train_images"][:, None],  # (60000, 1, 28, 28)
        train_labels=parts["train_labels"].astype(np.int64),
        test_images=parts["test_images"][:, None],  # (10000, 1, 28, 28)
        test_labels=parts["test_labels"].astype(np.int64),
        classes=FASHION_CLASSES,
    )


# --- scikit-learn's 8x8 digits (UCI optdigits test part): 1,797 images, no download -------------

@DATASETS.register()
def digits(root: str | Path | None = None, test_fraction: float = 0.2) -> ImageDataset:
    """The bundled 8x8 digits. They have no official test part, so a fixed stratified
    ``test_fraction`` (seed 0, a property of the dataset, not of a run) is held out as test."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.clip(bunch.images * 16, 0, 255).astype(np.uint8)[:, None]  # values 0..16 -> 0..255; (1797, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    rng = np.random.default_rng(0)
    test = np.zeros(len(labels), dtype=bool)
    for c in range(10):
        members = rng.permutation(np.flatnonzero(labels == c))
        test[members[: round(test_fraction * len(members))]] = True
    return ImageDataset("digits", images[~test], labels[~test], images[test], labels[test],
                        tuple(str(d) for d in range(10)))


# --- synthetic: seeded class templates plus noise, for tests and benchmarks ---------------------

@DATASETS.register()
def synthetic(
    root: str | Path | None = None,
    shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    train_size: int = 2000,
    test_size: int = 500,
    noise: float = 0.35,
    seed: int = 0,
) -> ImageDataset:
    """Each class is a fixed random smooth template; an image is its template plus noise.

    Learnable but not trivially (``noise`` sets how hard), and identical for identical options.
    """
    rng = np.random.default_rng(seed)
    C, H, W = shape
    coarse = rng.random((num_classes, C, max(1, H // 4), max(1, W // 4)))
    templates = coarse.repeat(4, axis=2).repeat(4, axis=3)[:, :, :H, :W]  # (K, C, H, W) in [0, 1]
    templates = np.pad(templates, ((0, 0), (0, 0), (0, H - templates.shape[2]), (0, W - templates.shape[3])))

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, num_classes, n)
        images = templates[labels] + noise * rng.standard_normal((n, C, H, W))
        return (np.clip(images, 0, 1) * 255).round().astype(np.uint8), labels.astype(np.int64)

    train_x, train_y = make(train_size)
    test_x, test_y = make(test_size)
    return ImageDataset("synthetic", train_x, train_y, test_x, test_y, tuple(f"class{k}" for k in range(num_classes)))
