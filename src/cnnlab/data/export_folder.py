"""A dataset written as image folders (``cnnlab data export NAME DIR --format imagefolder``).

``DIR/train/CLASS/N.png`` and ``DIR/test/CLASS/N.png`` (and ``DIR/val/`` for a dataset with its own
val part), PNG in Pillow's L for one channel and RGB for three, lossless. Class folders are the label
index, zero-padded, then the class name made safe for a file name (``0_T-shirt_top``; ``00_..`` with
more than 10 classes), so they sort in label order; file names are the image's position in its part,
zero-padded, so they sort in the dataset's order. Reading the folder back (``imagefolder``: classes,
then names) gives each part grouped by class, in the original order within each class: the
original arrays reordered by a stable sort of the labels, byte for byte.

The files are written into a hidden sibling, ``.DIR.partial``, renamed to ``DIR`` when the last one
is written: an export stopped half-way (Ctrl-C, a full disk, a kill) leaves no half a dataset under
``DIR``, and the next export of the same ``DIR`` deletes the leftover sibling and starts again.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlab.data.datasets import ImageDataset
from cnnlab.data.folder_decode import MIN_FILES_FOR_WORKERS
from cnnlab.data.workers import process_map, worker_count
from cnnlab.errors import CnnlabError

WRITE_CHUNK = 1024  # images per task: ~0.1 s of 28x28 PNGs, so the ~70 tasks of 70,000 images spread evenly
PNG_COMPRESSION = 6  # zlib level, Pillow's default; lossless at any level. On 28x28 images level 1 was 4% larger
# and no faster beyond noise: creating 70,000 files costs more than compressing them
NAME_CHARS = 60  # of a class name kept in its folder name, well within any file system's 255 bytes


@dataclass(frozen=True)
class WrittenFolder:
    directory: Path
    files: dict[str, int]  # PNG files written per part (train, val, test)
    bytes: int  # their total size
    seconds: float

    @property
    def total(self) -> int:
        return sum(self.files.values())


def class_folder_names(classes: tuple[str, ...] | list[str]) -> list[str]:
    """Folder names that sort in label order: the zero-padded index, then the name with every run of
    characters other than letters, digits, '.', '-' and '_' made one '_' ('T-shirt/top' -> 'T-shirt_top')."""
    width = len(str(len(classes) - 1))
    names = []
    for k, name in enumerate(classes):
        safe = re.sub(r"[^\w.-]+", "_", str(name)).strip("._")[:NAME_CHARS]
        names.append(f"{k:0{width}d}_{safe}" if safe else f"{k:0{width}d}")
    return names


_PARTS: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # a worker's view of the dataset, set by _share


def _share(parts: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    _PARTS.update(parts)  # with fork the arrays are the parent's pages, not copies


def _write_task(task: tuple[str, str, list[str], int, int]) -> int:
    """Write images ``start:stop`` of a part; returns the bytes written."""
    from PIL import Image

    directory, part, folders, start, stop = task
    images, labels = _PARTS[part]
    width = len(str(len(labels) - 1))
    written = 0
    for i in range(start, stop):
        pixels = images[i]  # (C, H, W)
        image = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))  # L or RGB
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESSION)
        with open(os.path.join(directory, part, folders[labels[i]], f"{i:0{width}d}.png"), "xb") as f:
            written += f.write(buffer.getbuffer())
    return written


def _check_target(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise CnnlabError(f"{directory} is a file; give a new or empty folder to write the image folders in")
    if not directory.is_dir():
        return
    with os.scandir(directory) as entries:
        if next(entries, None) is not None:
            raise CnnlabError(f"{directory} is not empty; give a new or empty folder, so no file of another "
                              "dataset is read as part of this one")


def staging_folder(directory: Path) -> Path:
    """Where an export into ``directory`` writes before it is complete."""
    return directory.parent / f".{directory.name}.partial"


def write_imagefolder(dataset: ImageDataset, directory: str | Path, workers: int | None = None) -> WrittenFolder:
    """Write every image of ``dataset`` as a PNG file under ``directory`` (new or empty), on ``workers``
    processes (default: all cores), through ``staging_folder(directory)``. A one-line error, before
    anything is written, for a non-empty folder, an image that is neither 1 nor 3 channels, or a class
    without images in a part (its folder would be empty, which ``imagefolder`` refuses)."""
    start_time = time.perf_counter()
    directory = Path(directory)
    _check_target(directory)
    parts = dataset.parts()
    if dataset.image_shape[0] not in (1, 3):
        raise CnnlabError(f"dataset '{dataset.name}' has {dataset.image_shape[0]}-channel images; PNG folders "
                          "hold 1 (grayscale) or 3 (RGB)")
    for part, (_, labels) in parts.items():
        empty = np.flatnonzero(np.bincount(labels, minlength=dataset.num_classes) == 0)
        if empty.size:
            raise CnnlabError(f"dataset '{dataset.name}' has no {part} image of class '{dataset.classes[empty[0]]}'; "
                              "an image folder needs every class in every part (choose other options)")
    folders = class_folder_names(dataset.classes)
    staging = staging_folder(directory)
    if staging.exists():
        shutil.rmtree(staging)  # an earlier export of this folder that did not finish
    for part in parts:
        for name in folders:
            (staging / part / name).mkdir(parents=True, exist_ok=True)
    tasks = [(str(staging), part, folders, i, min(i + WRITE_CHUNK, len(labels)))
             for part, (_, labels) in parts.items() for i in range(0, len(labels), WRITE_CHUNK)]
    total = sum(len(labels) for _, labels in parts.values())
    workers = max(1, min(workers or worker_count(), len(tasks)))
    if workers == 1 or total < MIN_FILES_FOR_WORKERS:
        _share(parts)
        try:
            written = sum(map(_write_task, tasks))
        finally:
            _PARTS.clear()
    else:
        with closing(process_map(_write_task, tasks, workers, _share, (parts,))) as results:
            written = sum(results)
    if directory.is_dir():
        directory.rmdir()  # empty (checked above); rename needs the name free
    os.replace(staging, directory)
    files = {part: len(labels) for part, (_, labels) in parts.items()}
    return WrittenFolder(directory, files, written, time.perf_counter() - start_time)
