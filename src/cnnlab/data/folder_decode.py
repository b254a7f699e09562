"""Image files decoded on every core: chunks of files to worker processes, one uint8 array per chunk back.

A worker decodes its chunk with ``cnnlab.data.images.decode_image`` (and ``resize_pixels`` when a size
is set) and stacks it as one (n, C, H, W) array, so the parent unpickles ~150 arrays for 70,000 files,
not 70,000. A file Pillow cannot read is reported with its reason and the chunk goes on, so one pass
finds every bad file. With ``channels`` None a chunk is 1-channel when all its files are grayscale,
else 3 with its gray images repeated (Pillow's L -> RGB copies the value into each band).
"""

from __future__ import annotations

import os
from contextlib import closing, nullcontext
from typing import NamedTuple

import numpy as np

from cnnlab.data.images import decode_image, resize_pixels
from cnnlab.data.workers import process_map, worker_count
from cnnlab.errors import CnnlabError, first_line

CHUNK_FILES = 512  # files per task: ~25 ms of 28x28 PNGs, so pickling and scheduling are noise, and
# 70,000 files make ~140 tasks, enough for the cores to finish together
MIN_FILES_FOR_WORKERS = 1000  # where 2 workers break even: starting them and collecting costs ~20-25 ms
# (torch loaded), 1,000 28x28 PNGs took 64 ms in one process and 63 ms in two, 2,000 took 148 and 92


class Chunk(NamedTuple):
    """What a worker returns for one chunk of files."""

    images: np.ndarray | None  # (n_ok, C, H, W) uint8; None when no file decoded or sizes differ
    ok: np.ndarray  # (n,) bool: the chunk's files that decoded
    bad: list[tuple[str, str]]  # (path, reason) of each file Pillow could not read
    sizes: list[tuple[str, tuple[int, int]]]  # the first file of each distinct (H, W), in file order


class Decoded(NamedTuple):
    images: np.ndarray  # (n_ok, C, H, W) uint8, the files that decoded, in file order
    ok: np.ndarray  # (n,) bool over the files given
    bad: list[tuple[str, str]]  # (path, reason), in file order


def bad_reason(path: str, err: Exception) -> str:
    """Why ``path`` cannot be read, in a few words (Pillow's messages repeat the path)."""
    from PIL import UnidentifiedImageError

    if isinstance(err, UnidentifiedImageError):
        try:
            return "empty file (0 bytes)" if os.path.getsize(path) == 0 else "not an image file that Pillow recognises"
        except OSError as gone:
            return first_line(gone)
    return first_line(err).replace(f"'{path}'", "the file").replace(path, "the file")


def decode_chunk(paths: list[str], channels: int | None, size: tuple[int, int] | None, mode: str) -> Chunk:
    """Decode ``paths`` (resized to ``size`` by ``mode`` when given) into one chunk."""
    pixels, bad = [], []
    ok = np.zeros(len(paths), dtype=bool)
    sizes: dict[tuple[int, int], str] = {}
    for i, path in enumerate(paths):
        try:
            image, _ = decode_image(path, channels)  # (H, W, C): C is 1 for a gray file when channels is None
            if size is not None:
                image = resize_pixels(image, size, mode)  # (h, w, C)
        except Exception as err:  # noqa: BLE001  any failure is this file's alone; the others go on
            bad.append((path, bad_reason(path, err)))
            continue
        sizes.setdefault(image.shape[:2], path)
        ok[i] = True
        pixels.append(image)
    examples = [(path, hw) for hw, path in sizes.items()]
    if len(sizes) != 1:
        return Chunk(None, ok, bad, examples)
    (H, W), C = next(iter(sizes)), max(p.shape[2] for p in pixels)
    images = np.empty((len(pixels), C, H, W), dtype=np.uint8)
    for j, image in enumerate(pixels):
        images[j] = image.transpose(2, 0, 1)  # (C', H, W); a gray (1, H, W) broadcasts to 3 channels
    return Chunk(images, ok, bad, examples)


def _decode_task(task: tuple) -> Chunk:
    return decode_chunk(*task)


def decode_files(paths: list[str], channels: int | None = None, size: tuple[int, int] | None = None,
                 mode: str = "resize", workers: int | None = None) -> Decoded:
    """Decode every file, in ``workers`` processes (default: all cores), into one (n_ok, C, H, W) array.

    Raises a one-line CnnlabError naming two files when the decoded images differ in size (only
    possible without ``size``), as soon as a chunk shows it.
    """
    workers = max(1, min(workers or worker_count(), -(-len(paths) // CHUNK_FILES)))
    tasks = [(paths[i:i + CHUNK_FILES], channels, size, mode) for i in range(0, len(paths), CHUNK_FILES)]
    if workers == 1 or len(paths) < MIN_FILES_FOR_WORKERS:
        results = nullcontext(map(_decode_task, tasks))
    else:
        results = closing(process_map(_decode_task, tasks, workers))  # leaving the block stops the workers
    chunks: list[Chunk] = []
    with results as chunk_results:
        for chunk in chunk_results:
            chunks.append(_checked(chunk, chunks))
    return _assemble(chunks)


def _checked(chunk: Chunk, before: list[Chunk]) -> Chunk:
    """``chunk``, or the mixed-size error when its images differ in size from each other or from earlier ones."""
    first = next((c.sizes[0] for c in before if c.sizes), None)
    examples = ([first] if first else []) + chunk.sizes
    other = next(((path, hw) for path, hw in examples if hw != examples[0][1]), None)
    if other is not None:
        (a, (h, w)), (b, (h2, w2)) = examples[0], other
        raise CnnlabError(f"image files differ in size: {a} is {h}x{w} and {b} is {h2}x{w2} (height x width); "
                          f"set data.image_size (e.g. [{h}, {w}]) to decode every image at one size")
    return chunk


def _assemble(chunks: list[Chunk]) -> Decoded:
    ok = np.concatenate([c.ok for c in chunks]) if chunks else np.zeros(0, dtype=bool)
    bad = [item for c in chunks for item in c.bad]
    parts = [c.images for c in chunks if c.images is not None]
    if not parts:
        return Decoded(np.zeros((0, 1, 0, 0), dtype=np.uint8), ok, bad)
    C = max(p.shape[1] for p in parts)  # 3 when any chunk has a colour file: the gray ones are repeated
    images = np.empty((sum(len(p) for p in parts), C, *parts[0].shape[2:]), dtype=np.uint8)
    start = 0
    for part in parts:
        images[start:start + len(part)] = part  # (n, 1, H, W) broadcasts into (n, 3, H, W)
        start += len(part)
    return Decoded(images, ok, bad)
