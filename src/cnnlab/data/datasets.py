"""The dataset registry: every loader returns a whole dataset as uint8 NCHW arrays.

``load_dataset('fashion_mnist')`` -> ``ImageDataset`` with train and test images (N, C, H, W)
uint8 and labels (N,) int64. Splitting, normalization and batching happen later
(``cnnlab.data.splits``, ``normalize``, ``loader``), so every dataset goes through the same
pipeline. Loaders never download at run time except through torchvision where the network
allows it (``cifar10``).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.data.idx import read_idx
from cnnlab.errors import CnnlabError
from cnnlab.registry import Registry, check_options


@dataclass(frozen=True)
class ImageDataset:
    """A dataset in memory, as the files give it: official train and test parts.

    Construction checks what every later step relies on (one image shape for both parts, uint8
    pixels, one integer label per image within the classes), so a bad dataset fails before
    anything trains, with one line naming ``source``.
    """

    name: str
    train_images: np.ndarray  # (N, C, H, W) uint8
    train_labels: np.ndarray  # (N,) int64 in [0, num_classes)
    test_images: np.ndarray  # (M, C, H, W) uint8
    test_labels: np.ndarray  # (M,) int64
    classes: tuple[str, ...]
    source: str  # what was read: a folder or file, or "generated", "scikit-learn"; for the run record
    # a validation part of its own (an image folder's val/); None: val is held out of train
    val_images: np.ndarray | None = None
    val_labels: np.ndarray | None = None
    notes: dict[str, Any] = field(default_factory=dict)  # facts for data.json (files skipped, the cache used)

    def __post_init__(self) -> None:
        check_parts(self)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def parts(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{part: (images, labels)}: train, val (only when the dataset has a val part of its own), test."""
        parts = {"train": (self.train_images, self.train_labels)}
        if self.val_images is not None:
            parts["val"] = (self.val_images, self.val_labels)
        parts["test"] = (self.test_images, self.test_labels)
        return parts


def _shape(images: np.ndarray) -> str:
    return "x".join(map(str, images.shape[1:]))


def check_parts(data: ImageDataset) -> None:
    """Raise a one-line CnnlabError unless train and test are uint8 (N, C, H, W) of one shape
    with 1-D integer labels, one per image, in 0..num_classes-1."""
    what = f"dataset '{data.name}' ({data.source})"
    if not data.classes:
        raise CnnlabError(f"{what} has no classes")
    if (data.val_images is None) != (data.val_labels is None):
        raise CnnlabError(f"{what}: a val part needs both images and labels")
    parts = data.parts()
    for part, (images, labels) in parts.items():
        if images.dtype != np.uint8 or images.ndim != 4:
            raise CnnlabError(f"{what}: {part} images must be uint8 of shape (N, C, H, W), "
                              f"got {images.dtype} {images.shape}")
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise CnnlabError(f"{what}: {part} labels must be integers of shape (N,), "
                              f"got {labels.dtype} {labels.shape}")
        if len(labels) != len(images):
            raise CnnlabError(f"{what}: {part} has {len(images)} images but {len(labels)} labels")
        K = len(data.classes)
        if labels.size and (labels.min() < 0 or labels.max() >= K):
            raise CnnlabError(f"{what}: {part} labels must lie in 0..{K - 1} (one per class), "
                              f"found {labels.min()}..{labels.max()}")
    for part, (images, _) in parts.items():
        if data.train_images.shape[1:] != images.shape[1:]:
            raise CnnlabError(f"{what}: train images are {_shape(data.train_images)} but {part} images are "
                              f"{_shape(images)}; every part must have one shape (C x H x W)")


DATASETS: Registry[Callable[..., ImageDataset]] = Registry("dataset")


def data_roots(root: str | Path | None = None) -> list[Path]:
    """Where datasets are looked for: ``root`` alone when given, else ``$CNNLAB_DATA``, ``./data``."""
    if root:
        return [Path(root)]  # an explicit folder is the one to read, never a fallback to another
    roots = [Path(os.environ["CNNLAB_DATA"])] if os.environ.get("CNNLAB_DATA") else []
    roots.append(Path("data"))
    return roots


def missing_at_root(dataset: str, root: str | Path, missing: dict[Path, list[str]]) -> CnnlabError:
    """The error for an explicit ``data.root`` that lacks the data; ``missing`` maps each folder
    looked in to the files it lacks. Names the folder closest to complete and what it lacks."""
    root = Path(root)
    if not root.is_dir():
        return CnnlabError(f"data.root {root} is not a folder; point it at the {dataset} files, "
                           "or leave data.root unset to search $CNNLAB_DATA, ./data and the system's copies")
    # the folder nearest to complete; among equals one that exists, then the root itself
    folder, lacks = min(missing.items(), key=lambda item: (len(item[1]), not item[0].is_dir(), item[0] != root))
    others = [str(f) for f in missing if f != folder]
    also = f" (also looked in {', '.join(others)})" if others else ""
    return CnnlabError(f"data.root {root} holds no complete {dataset}: {folder} lacks {', '.join(lacks)}{also}; "
                       "add the missing files, or leave data.root unset to search $CNNLAB_DATA, ./data and the "
                       "system's copies")


def known_num_classes(name: str, options: dict[str, Any]) -> int | None:
    """The class count of dataset ``name`` with ``options``, without loading it; None where only
    the files can tell."""
    if name == "synthetic":
        return options.get("num_classes", inspect.signature(synthetic).parameters["num_classes"].default)
    return {"fashion_mnist": len(FASHION_CLASSES), "digits": 10, "cifar10": 10}.get(name)


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


def _idx_file(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _missing_idx(folder: Path) -> list[str]:
    return [f"{stem}[.gz]" for stem in FASHION_FILES.values() if _idx_file(folder, stem) is None]


def fashion_mnist_dir(root: str | Path | None = None) -> Path:
    """The folder that holds the four Fashion-MNIST IDX files, or a CnnlabError saying how to get them.

    With ``root`` only that folder is read (also its ``fashion-mnist/`` and torchvision's
    ``FashionMNIST/raw/``); without it the search runs $CNNLAB_DATA, ./data, then Debian's copy.
    """
    candidates = []
    for base in data_roots(root):
        # our own layout, torchvision's download layout, and files dropped straight into the root
        candidates += [base / "fashion-mnist", base / "FashionMNIST" / "raw", base]
    if not root:
        candidates.append(DEBIAN_FASHION_DIR)
    missing = {folder: _missing_idx(folder) for folder in candidates}
    found = next((folder for folder, lacks in missing.items() if not lacks), None)
    if found is not None:
        return found
    if root:
        raise missing_at_root("Fashion-MNIST", root, missing)
    raise CnnlabError(f"Fashion-MNIST not found (looked in {', '.join(map(str, candidates))}); {GET_FASHION}")


@DATASETS.register()
def fashion_mnist(root: str | Path | None = None) -> ImageDataset:
    folder = fashion_mnist_dir(root)
    parts = {key: read_idx(_idx_file(folder, stem)) for key, stem in FASHION_FILES.items()}
    for part in ("train", "test"):
        images = parts[f"{part}_images"]
        if images.ndim != 3:  # before the channel axis is added; the rest ImageDataset checks
            path = _idx_file(folder, FASHION_FILES[f"{part}_images"])
            raise CnnlabError(f"{path}: expected images of shape (N, H, W), got {images.dtype} {images.shape}")
    return ImageDataset(
        name="fashion_mnist",
        train_images=parts["train_images"][:, None],  # (60000, 1, 28, 28)
        train_labels=parts["train_labels"].astype(np.int64),
        test_images=parts["test_images"][:, None],  # (10000, 1, 28, 28)
        test_labels=parts["test_labels"].astype(np.int64),
        classes=FASHION_CLASSES,
        source=str(folder),
    )


def _reads_no_files(name: str, root: str | Path | None) -> None:
    if root:  # an explicit folder that would be ignored is refused, as one that lacks the data is
        raise CnnlabError(f"dataset '{name}' reads no files, but data.root is {root}; remove data.root")


# --- scikit-learn's 8x8 digits (UCI optdigits test part): 1,797 images, no download -------------

@DATASETS.register()
def digits(root: str | Path | None = None, test_fraction: float = 0.2) -> ImageDataset:
    """The bundled 8x8 digits. They have no official test part, so a fixed stratified
    ``test_fraction`` (seed 0, a property of the dataset, not of a run) is held out as test."""
    from sklearn.datasets import load_digits

    _reads_no_files("digits", root)
    if not 0 < test_fraction < 1:
        raise CnnlabError(f"dataset 'digits' option 'test_fraction' must be in (0, 1), got {test_fraction!r}")
    bunch = load_digits()
    images = np.clip(bunch.images * 16, 0, 255).astype(np.uint8)[:, None]  # values 0..16 -> 0..255; (1797, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    rng = np.random.default_rng(0)
    test = np.zeros(len(labels), dtype=bool)
    for c in range(10):
        members = rng.permutation(np.flatnonzero(labels == c))
        test[members[: round(test_fraction * len(members))]] = True
    return ImageDataset("digits", images[~test], labels[~test], images[test], labels[test],
                        tuple(str(d) for d in range(10)), source="scikit-learn")


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
    _reads_no_files("synthetic", root)
    _check_synthetic(shape, num_classes, train_size, test_size, noise, seed)
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
    return ImageDataset("synthetic", train_x, train_y, test_x, test_y, tuple(f"class{k}" for k in range(num_classes)),
                        source="generated")


def _check_synthetic(shape, num_classes, train_size, test_size, noise, seed) -> None:
    """One-line errors for the synthetic options, before numpy would raise on them."""
    def whole(x, low: int) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and x >= low

    at_least_1 = "a whole number of at least 1"
    rules = [
        ("shape", shape, isinstance(shape, (list, tuple)) and len(shape) == 3 and all(whole(d, 1) for d in shape),
         "three sizes C, H, W of at least 1, e.g. [1, 28, 28]"),
        ("num_classes", num_classes, whole(num_classes, 2), "a whole number of at least 2"),
        ("train_size", train_size, whole(train_size, 1), at_least_1),
        ("test_size", test_size, whole(test_size, 1), at_least_1),
        ("noise", noise, isinstance(noise, (int, float)) and not isinstance(noise, bool) and noise >= 0,
         "a number >= 0"),
        ("seed", seed, whole(seed, 0), "a whole number >= 0"),
    ]
    for key, value, ok, valid in rules:
        if not ok:
            raise CnnlabError(f"dataset 'synthetic' option '{key}' must be {valid}, got {value!r}")
