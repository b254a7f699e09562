"""The decoded-image cache of an image folder: the pixels once decoded, read back in milliseconds.

Per folder and decode settings (``image_size``, ``channels``, ``resize``), three files in the cache
folder ($CNNLAB_CACHE_DIR/imagefolder, else $XDG_CACHE_HOME/cnnlab/imagefolder, else
~/.cache/cnnlab/imagefolder):

- ``NAME-ID-KEY.npy``: uint8 (N, C, H, W), every image that decoded, in file order (``np.load``);
- ``NAME-ID-KEY.index.npy``: int64 (N, 2), each image's label and part (0 train, 1 val, 2 test);
- ``NAME-ID.json``: KEY, the images' shape and the unreadable files (path, reason), written last.

ID hashes the folder's resolved path and the settings; KEY hashes what the folder holds (every image
file's path, size and mtime_ns) with ID and the decoder's version, so adding, removing, replacing or
touching any file, or a new Pillow, misses. Each file is written atomically and the JSON, which names
KEY, last: a kill mid-write leaves the old cache or none, never half of one. A newer KEY removes the
older one's files (and a killed write's temporaries, once an hour old), so a folder keeps one cache per
settings. A cache that cannot be read is reported and decoded again, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.atomic import TMP_SUFFIX, atomic_write_json, atomic_write_with
from cnnlab.cache import cache_dir
from cnnlab.errors import first_line

CACHE_VERSION = 1  # the files' layout; a change makes every older cache a miss
DECODER = "cnnlab.data.images.decode_image 1"  # bump when decoding changes what pixels a file gives
Warn = Callable[[str], None]  # takes one line for stderr
STRAY_AGE_S = 3600  # a cache temporary this old was left by a killed write: writing one takes seconds


@dataclass(frozen=True)
class CachedFolder:
    images: np.ndarray  # (N, C, H, W) uint8, the files that decoded, in file order
    labels: np.ndarray  # (N,) int64
    parts: np.ndarray  # (N,) int64: 0 train, 1 val, 2 test
    bad: list[tuple[str, str]]  # (path relative to the root, reason) of the files that did not decode
    path: Path  # the images file


def cache_folder() -> Path:
    return cache_dir() / "imagefolder"


def decoder_version() -> str:
    from PIL import __version__ as pillow

    return f"{DECODER}, Pillow {pillow}, numpy {np.__version__}"


class CacheKey:
    """Where a folder's cache lives and what it must match: ``update`` it with every image file."""

    def __init__(self, root: Path, settings: dict[str, Any]) -> None:
        resolved = str(Path(root).resolve())
        ident = hashlib.blake2b(json.dumps([resolved, settings], sort_keys=True).encode(), digest_size=6).hexdigest()
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(resolved).name)[:40] or "root"
        self.stem = f"{name}-{ident}"
        self._hash = hashlib.blake2b(f"{CACHE_VERSION}\0{ident}\0{decoder_version()}\n".encode(), digest_size=16)

    def update(self, lines: str) -> None:
        """Add file lines ``path\\0size\\0mtime_ns\\n`` (paths relative to the root, in file order)."""
        self._hash.update(lines.encode("utf-8", "surrogateescape"))

    @property
    def key(self) -> str:
        return self._hash.hexdigest()

    def files(self, folder: Path) -> tuple[Path, Path, Path]:
        """The JSON, the images and the index file."""
        data = f"{self.stem}-{self.key[:16]}"
        return folder / f"{self.stem}.json", folder / f"{data}.npy", folder / f"{data}.index.npy"


def read_cache(key: CacheKey, folder: Path, warn: Warn) -> CachedFolder | None:
    """The cached folder, or None on a miss; a cache that cannot be read is reported through ``warn``."""
    meta_path, images_path, index_path = key.files(folder)
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("version") != CACHE_VERSION or meta.get("key") != key.key:
            return None  # the folder or the decoder changed: a miss, not an error
        images = np.load(images_path, allow_pickle=False)
        index = np.load(index_path, allow_pickle=False)
        if (images.dtype != np.uint8 or list(images.shape) != meta["shape"] or index.dtype != np.int64
                or index.shape != (len(images), 2)):
            raise ValueError(f"images {images.dtype} {images.shape} and index {index.dtype} {index.shape} "
                             f"do not match the recorded shape {meta['shape']}")
        bad = [(str(path), str(reason)) for path, reason in meta["bad_files"]]
    except Exception as err:  # noqa: BLE001  any damage (truncation, a bad header, a lost file) means decode again
        warn(f"warning: the image-folder cache {meta_path} cannot be read ({first_line(err, 160)}); decoding again")
        return None
    return CachedFolder(images, index[:, 0].copy(), index[:, 1].copy(), bad, images_path)


def write_cache(key: CacheKey, folder: Path, images: np.ndarray, labels: np.ndarray, parts: np.ndarray,
                bad: list[tuple[str, str]], root: Path, warn: Warn) -> Path | None:
    """Write the cache (images first, the JSON that names them last); returns the images file, or None
    when the cache folder cannot be written (reported through ``warn``; the load goes on uncached)."""
    meta_path, images_path, index_path = key.files(folder)
    _remove_stray_temporaries(folder, key.stem)
    try:
        atomic_write_with(images_path, lambda f: np.save(f, images, allow_pickle=False))
        atomic_write_with(index_path, lambda f: np.save(f, np.stack([labels, parts], axis=1).astype(np.int64)))
        atomic_write_json(meta_path, {"version": CACHE_VERSION, "key": key.key, "root": str(root),
                                      "decoder": decoder_version(), "shape": list(images.shape),
                                      "bad_files": [list(item) for item in bad]})
    except OSError as err:
        warn(f"warning: cannot write the image-folder cache in {folder} ({first_line(err, 160)}); "
             "set $CNNLAB_CACHE_DIR to a writable folder to keep decoded images")
        return None
    ours = re.compile(re.escape(key.stem) + r"-[0-9a-f]{16}(\.index)?\.npy")
    for old in folder.glob(f"{key.stem}-*.npy"):  # the same folder and settings, older contents
        if ours.fullmatch(old.name) and old not in (images_path, index_path):
            old.unlink(missing_ok=True)
    return images_path


def _remove_stray_temporaries(folder: Path, stem: str) -> None:
    """Delete what killed writes of this cache left (``atomic``'s hidden temporaries), once they are
    older than any write in progress could be."""
    for stray in folder.glob(f".{stem}*{TMP_SUFFIX}"):
        try:
            if time.time() - stray.stat().st_mtime > STRAY_AGE_S:
                stray.unlink()
        except OSError:  # gone already, or not ours to remove
            pass
