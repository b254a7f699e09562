"""``imagefolder``: a dataset from folders of image files, read as torchvision's ``ImageFolder`` reads them.

Two layouts under ``data.root``:

- class folders, ``ROOT/CLASS/*.png``: a fixed stratified ``test_fraction`` (seed 0, a property of
  the folder, not of a run) is held out as test, as the ``digits`` loader does;
- ``ROOT/train/CLASS/``, ``ROOT/test/CLASS/`` and optionally ``ROOT/val/CLASS/``, each with the same
  class folders; ``val/`` becomes the dataset's own val part.

Classes are the class folders' names, sorted (torchvision's ``find_classes``). Files are found as
torchvision's ``make_dataset`` finds them: subfolders too, folders in path order, files in name order,
its ``IMG_EXTENSIONS`` in any case; unlike it, hidden names (``.ipynb_checkpoints/``, macOS's
``._photo.jpg``) are skipped. Each file is decoded once, on every core (``folder_decode``), and the
pixels are cached (``folder_cache``), so the second load reads one array. ``write_imagefolder``
(``export_folder``) writes a dataset in the layout this reads back exactly.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from cnnlab.data.datasets import DATASETS, ImageDataset
from cnnlab.data.export_folder import WrittenFolder, write_imagefolder
from cnnlab.data.folder_cache import CacheKey, cache_folder, read_cache, write_cache
from cnnlab.data.folder_decode import decode_files
from cnnlab.data.images import RESIZE_MODES
from cnnlab.data.splits import stratified_holdout
from cnnlab.errors import CnnlabError

__all__ = ["IMG_EXTENSIONS", "Listing", "WrittenFolder", "imagefolder", "list_folder", "write_imagefolder"]

# torchvision.datasets.folder.IMG_EXTENSIONS, matched case-insensitively as there (tested against it)
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
PARTS = ("train", "val", "test")  # a part's position is its code in the cache's index
TEST_FRACTION = 0.2  # held out of class folders as test when there is no test/ folder (as digits)
LISTED_NAMES = 5  # class folder names an error lists before "and N more"


class Listing(NamedTuple):
    """Every image file of a folder, in file order: by part, class, then path."""

    paths: list[str]
    labels: np.ndarray  # (n,) int64, the class folder's position in ``classes``
    parts: np.ndarray  # (n,) int64, the part's position in PARTS
    classes: tuple[str, ...]
    layout: str  # "class folders", "train/test" or "train/val/test"


def warn(message: str) -> None:
    """One line on stderr: an unreadable file, or a cache that cannot be used. They come before the error
    that stops the load, or beside a load that goes on, so no caller could print them after."""
    print(message, file=sys.stderr, flush=True)


def _names(names: list[str]) -> str:
    more = f" and {len(names) - LISTED_NAMES} more" if len(names) > LISTED_NAMES else ""
    return ", ".join(names[:LISTED_NAMES]) + more


def subfolders(folder: Path) -> list[str]:
    """The names of ``folder``'s visible subfolders (links followed), sorted."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())


def image_files(folder: Path) -> list[tuple[str, int, int]]:
    """(path, size, mtime_ns) of every image file under ``folder``, in torchvision's order: folders by
    path (``sorted(os.walk(folder, followlinks=True))``), then files by name. One stat per file, the
    most a second load spends (~2.5 us each on a VM; 70,000 files take ~0.17 s)."""
    found, stack, seen = [], [str(folder)], set()
    while stack:
        path = stack.pop()
        st = os.stat(path)
        if (st.st_dev, st.st_ino) in seen:  # a link back up the tree: os.walk would loop
            continue
        seen.add((st.st_dev, st.st_ino))
        files = []
        with os.scandir(path) as entries:
            for entry in entries:
                name = entry.name
                if name[0] == ".":
                    continue
                if name.lower().endswith(IMG_EXTENSIONS) and entry.is_file():
                    st = entry.stat()
                    files.append((entry.path, st.st_size, st.st_mtime_ns))
                elif entry.is_dir():
                    stack.append(entry.path)
        files.sort()
        found.append((path, files))
    found.sort(key=lambda item: item[0])
    return found[0][1] if len(found) == 1 else [file for _, files in found for file in files]


def part_folders(root: Path) -> dict[str, Path]:
    """{part: folder}: train/, test/ and val/ where the root has them, else {"train": root} (class folders)."""
    names = subfolders(root)
    present = [part for part in PARTS if part in names]
    if not names:
        raise CnnlabError(f"data.root {root} holds no class folders; put each class's images in a folder of "
                          f"its own ({root}/CLASS/*.png), or in train/CLASS/ and test/CLASS/")
    if not present:
        return {"train": root}
    missing = [f"{part}/" for part in ("train", "test") if part not in present]
    if missing:
        raise CnnlabError(f"data.root {root} has {', '.join(p + '/' for p in present)} but no {' or '.join(missing)}; "
                          "give it train/ and test/ (val/ optional), each holding the same class folders")
    others = [name for name in names if name not in PARTS]
    if others:
        raise CnnlabError(f"data.root {root} holds {_names(others)} beside train/ and test/; move them into "
                          "the parts' class folders or out of the root")
    return {part: root / part for part in present}


def check_classes(folders: dict[str, Path]) -> tuple[str, ...]:
    """The class folder names, the same in every part, or a one-line error naming the difference."""
    train = subfolders(folders["train"])
    for part, folder in folders.items():
        names = train if part == "train" else subfolders(folder)
        if not names:
            raise CnnlabError(f"{folder} holds no class folders; put each class's images in a folder of its own "
                              f"({folder}/CLASS/*.png)")
        if names != train:
            only_train, only_here = sorted(set(train) - set(names)), sorted(set(names) - set(train))
            differences = ([f"only in train: {_names(only_train)}"] if only_train else []) + (
                [f"only in {part}: {_names(only_here)}"] if only_here else [])
            raise CnnlabError(f"{folder} and {folders['train']} hold different class folders "
                              f"({'; '.join(differences)}); give every part the same class folders")
    return tuple(train)


def list_folder(root: Path, key: CacheKey | None = None) -> Listing:
    """Every image file under ``root`` with its class and part; ``key`` takes each file's path
    (relative to ``root``), size and mtime_ns. One-line errors for a layout that cannot be read."""
    folders = part_folders(root)
    classes = check_classes(folders)
    start = len(os.path.join(str(root), ""))  # where a path relative to the root begins
    paths, labels, parts = [], [], []
    for code, part in enumerate(PARTS):
        if part not in folders:
            continue
        for label, name in enumerate(classes):
            files = image_files(folders[part] / name)
            if not files:
                raise CnnlabError(f"class folder {folders[part] / name} holds no image files "
                                  f"({' '.join(IMG_EXTENSIONS)}); add its images or remove the folder")
            if key is not None:
                key.update("".join(f"{path[start:]}\0{size}\0{mtime}\n" for path, size, mtime in files))
            paths += [path for path, _, _ in files]
            labels += [label] * len(files)
            parts += [code] * len(files)
    layout = "class folders" if list(folders) == ["train"] else "/".join(folders)
    return Listing(paths, np.array(labels, dtype=np.int64), np.array(parts, dtype=np.int64), classes, layout)


def report_bad_files(root: Path, bad: list[tuple[str, str]], total: int, skip: bool) -> None:
    """List each unreadable file on stderr (``path: reason``) and the total; without ``skip``, stop."""
    if not bad:
        return
    for path, reason in bad:
        warn(f"{root / path}: {reason}")
    count = f"{len(bad)} of {total} image files in {root} cannot be read"
    warn(count + (", skipped (data.skip_bad_files)" if skip else ""))
    if not skip:
        raise CnnlabError(f"{count} (listed above); fix or remove them, or set data.skip_bad_files: true")


def _check_settings(image_size, channels, resize, skip_bad_files, test_fraction) -> tuple[int, int] | None:
    """``image_size`` as a tuple; one-line errors for settings a direct call (not a recipe) can get wrong."""
    if image_size is not None:
        if not (isinstance(image_size, (list, tuple)) and len(image_size) == 2
                and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in image_size)):
            raise CnnlabError(f"data.image_size must be [height, width] of whole numbers >= 1, got {image_size!r}")
        image_size = (int(image_size[0]), int(image_size[1]))
    if channels not in (None, 1, 3):
        raise CnnlabError(f"data.channels must be 1 (grayscale), 3 (RGB) or null (as the files are), got {channels!r}")
    if resize not in RESIZE_MODES:
        raise CnnlabError(f"data.resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
    if not isinstance(skip_bad_files, bool):
        raise CnnlabError(f"data.skip_bad_files must be true or false, got {skip_bad_files!r}")
    if test_fraction is not None and not (isinstance(test_fraction, (int, float)) and 0 < test_fraction < 1):
        raise CnnlabError(f"dataset 'imagefolder' option 'test_fraction' must be in (0, 1), got {test_fraction!r}")
    return image_size


@DATASETS.register()
def imagefolder(root: str | Path | None = None, image_size: tuple[int, int] | None = None, channels: int | None = None,
                resize: str = "resize", skip_bad_files: bool = False, test_fraction: float | None = None
                ) -> ImageDataset:
    """The images under ``root`` at ``image_size`` (None: the files' own, which must agree) by ``resize``,
    in ``channels`` (None: 1 when every file is grayscale, else 3). ``test_fraction`` (default 0.2)
    applies to class folders without test/."""
    if not root:
        raise CnnlabError("dataset 'imagefolder' needs data.root: a folder of class folders (ROOT/CLASS/*.png) "
                          "or of train/ and test/ class folders")
    root = Path(root)
    if not root.is_dir():
        raise CnnlabError(f"data.root {root} is not a folder; point it at a folder of class folders "
                          "(ROOT/CLASS/*.png) or of train/ and test/ class folders")
    size = _check_settings(image_size, channels, resize, skip_bad_files, test_fraction)
    key = CacheKey(root, {"image_size": size, "channels": channels, "resize": resize if size else None})
    listing = list_folder(root, key)
    if test_fraction is not None and listing.layout != "class folders":
        raise CnnlabError(f"data.root {root} has its own test/ folder, so option 'test_fraction' does not apply; "
                          "remove it")
    folder = cache_folder()
    cached = read_cache(key, folder, warn)
    if cached is None:
        decoded = decode_files(listing.paths, channels, size, resize)
        start = len(os.path.join(str(root), ""))
        bad = [(path[start:], reason) for path, reason in decoded.bad]
        images, labels, parts = decoded.images, listing.labels[decoded.ok], listing.parts[decoded.ok]
        cache_path = write_cache(key, folder, images, labels, parts, bad, root, warn)
    else:
        images, labels, parts, bad, cache_path = cached.images, cached.labels, cached.parts, cached.bad, cached.path
    report_bad_files(root, bad, len(listing.paths), skip_bad_files)
    notes = {"layout": listing.layout, "image_files": len(listing.paths), "cache_hit": cached is not None,
             "cache": str(cache_path) if cache_path else None,  # None: the cache folder could not be written
             "files_decoded": 0 if cached is not None else len(listing.paths), "bad_files_skipped": len(bad)}
    return _dataset(root, listing, images, labels, parts, test_fraction or TEST_FRACTION, notes)


def _dataset(root: Path, listing: Listing, images: np.ndarray, labels: np.ndarray, parts: np.ndarray,
             test_fraction: float, notes: dict) -> ImageDataset:
    """The ImageDataset of the decoded images: its parts as the folder gives them, or test held out."""
    if not len(labels):
        raise CnnlabError(f"none of the {len(listing.paths)} image files in {root} can be read; fix or replace them")
    if listing.layout == "class folders":
        count = round(test_fraction * len(labels))
        if not 0 < count < len(labels):
            raise CnnlabError(f"data.root {root} has {len(labels)} readable images, too few to hold out "
                              f"test_fraction {test_fraction} as test; add images, or train/ and test/ folders")
        parts = parts.copy()
        parts[stratified_holdout(labels, test_fraction, seed=0)] = PARTS.index("test")
        notes["test_fraction"] = test_fraction
    present = [0, 2] + ([1] if "val" in listing.layout else [])  # codes of train, test and val (PARTS)
    for code in present:
        if not (parts == code).any():  # every file of the part was skipped as unreadable
            raise CnnlabError(f"no image file in {root / PARTS[code]} can be read; fix or replace them")
    train, test = _part(images, labels, parts, 0), _part(images, labels, parts, 2)
    val = _part(images, labels, parts, 1) if 1 in present else (None, None)
    return ImageDataset("imagefolder", *train, *test, listing.classes, source=str(root), val_images=val[0],
                        val_labels=val[1], notes=notes)


def _part(images: np.ndarray, labels: np.ndarray, parts: np.ndarray, code: int) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels of one part: a view where the part is contiguous (train/, val/, test/ are,
    in file order), else a copy."""
    where = np.flatnonzero(parts == code)
    if where[-1] - where[0] + 1 == len(where):
        return images[where[0]:where[-1] + 1], labels[where[0]:where[-1] + 1]
    return images[where], labels[where]
