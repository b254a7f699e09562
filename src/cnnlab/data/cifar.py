"""CIFAR-10 (Krizhevsky 2009) from its official files: python pickles or binary batches.

Python version: ``cifar-10-batches-py/`` with ``data_batch_1..5``, ``test_batch`` and
``batches.meta``, each a pickled dict of ``data`` (10000, 3072) uint8 and ``labels``. They are
read through an unpickler that admits only numpy arrays and plain builtins, so a tampered file
cannot run code. Binary version: ``cifar-10-batches-bin/`` with ``data_batch_1..5.bin`` and
``test_batch.bin``, records of 1 label byte + 3072 pixel bytes (R, G, B planes of 32x32).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from cnnlab.data.datasets import DATASETS, ImageDataset, data_roots, missing_at_root
from cnnlab.errors import CnnlabError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
PIXELS = 3 * 32 * 32  # bytes per image
GET_CIFAR = ("download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it "
             "into $CNNLAB_DATA or ./data, or pass data.options.download=true where the network allows")

_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes (pure, no side effects)
}
_SAFE_BUILTINS = {"list", "dict", "tuple", "set", "frozenset", "bytes", "bytearray", "str", "int", "float",
                  "complex", "bool"}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles containers, numbers, strings and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str):
        if (module, name) in _SAFE_GLOBALS or (module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays and builtins are allowed")


def read_python_batch(path: Path) -> dict:
    """One pickled CIFAR batch as a dict with str keys (the files use Python 2 byte-string keys)."""
    try:
        with open(path, "rb") as f:
            raw = NumpyOnlyUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, OSError) as err:
        raise CnnlabError(f"{path}: not a readable CIFAR python batch ({err})") from err
    if not isinstance(raw, dict):
        raise CnnlabError(f"{path}: expected a pickled dict, found {type(raw).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _check_batch(path: Path, data, labels) -> tuple[np.ndarray, np.ndarray]:
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        raise CnnlabError(f"{path}: 'data' must be uint8 of shape (N, {PIXELS}), got {data.dtype} {data.shape}")
    if labels.shape != (len(data),):
        raise CnnlabError(f"{path}: {len(data)} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise CnnlabError(f"{path}: labels must lie in 0..9, found {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32), labels  # (N, 3, 32, 32): R, G, B planes


def load_python_batches(folder: Path) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    def part(name: str):
        batch = read_python_batch(folder / name)
        if "data" not in batch or "labels" not in batch:
            raise CnnlabError(f"{folder / name}: missing 'data' or 'labels' (keys: {sorted(map(str, batch))})")
        return _check_batch(folder / name, batch["data"], batch["labels"])

    train = [part(name) for name in TRAIN_BATCHES]
    test = part("test_batch")
    return [x for x, _ in train], [y for _, y in train], [test[0]], [test[1]]


def read_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    record = PIXELS + 1
    if raw.size == 0 or raw.size % record:
        raise CnnlabError(f"{path}: size {raw.size} bytes is not a whole number of {record}-byte CIFAR records")
    records = raw.reshape(-1, record)  # (N, 1 + 3072)
    return _check_batch(path, records[:, 1:], records[:, 0])


FORMATS = {  # kind -> (folder under a data root, the six files it must hold)
    "python": ("cifar-10-batches-py", TRAIN_BATCHES + ["test_batch"]),
    "binary": ("cifar-10-batches-bin", [f"{name}.bin" for name in TRAIN_BATCHES + ["test_batch"]]),
}


def _cifar_candidates(root: str | Path | None) -> list[tuple[str, Path]]:
    """(kind, folder) pairs to look in: each root's batch folders, and the root itself."""
    return [(kind, folder) for base in data_roots(root) for kind, (sub, _) in FORMATS.items()
            for folder in (base / sub, base)]


def _missing(kind: str, folder: Path) -> list[str]:
    return [name for name in FORMATS[kind][1] if not (folder / name).is_file()]


def find_cifar10(root: str | Path | None) -> tuple[str, Path] | None:
    """The first folder with all six batches of one format; with ``root``, only under it."""
    return next(((kind, folder) for kind, folder in _cifar_candidates(root) if not _missing(kind, folder)), None)


def _download(root: str | Path | None) -> None:
    target = data_roots(root)[0]
    try:
        from torchvision.datasets import CIFAR10

        CIFAR10(str(target), train=True, download=True)
    except Exception as err:  # no network, a proxy, a full disk: all end the same way for the user
        raise CnnlabError(f"CIFAR-10 download into {target} failed ({str(err).splitlines()[0]}); {GET_CIFAR}") from err


@DATASETS.register()
def cifar10(root: str | Path | None = None, download: bool = False) -> ImageDataset:
    found = find_cifar10(root)
    if found is None and download:
        _download(root)
        found = find_cifar10(root)
    if found is None and root:
        missing = {}
        for kind, folder in _cifar_candidates(root):  # a folder may lack both formats: keep the nearer
            lacks = _missing(kind, folder)
            missing[folder] = min(missing.get(folder, lacks), lacks, key=len)
        raise missing_at_root("CIFAR-10", root, missing)
    if found is None:
        looked = ", ".join(str(b) for b in data_roots(root))
        raise CnnlabError(f"CIFAR-10 not found (looked for cifar-10-batches-py or -bin in {looked}); {GET_CIFAR}")
    kind, folder = found
    if kind == "python":
        train_x, train_y, test_x, test_y = load_python_batches(folder)
    else:
        parts = [read_binary_batch(folder / f"{name}.bin") for name in TRAIN_BATCHES + ["test_batch"]]
        train_x, train_y = [p[0] for p in parts[:5]], [p[1] for p in parts[:5]]
        test_x, test_y = [parts[5][0]], [parts[5][1]]
    return ImageDataset("cifar10", np.concatenate(train_x), np.concatenate(train_y),
                        np.concatenate(test_x), np.concatenate(test_y), CIFAR10_CLASSES, source=str(folder))
