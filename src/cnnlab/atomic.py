"""Atomic file writes: a temporary file in the same folder, written, fsynced, then renamed.

``os.replace`` is atomic on POSIX, so a reader (or a process killed mid-write) sees either the
old file or the new one, never half of one. The temporary file is opened with mode 0o666 like
any new file, so the kernel applies the umask: run files are as readable as the user's other
files (``tempfile.mkstemp`` would make them 0600 whatever the umask). Temporary names start
with ``.`` and end with ``.tmp``; ``remove_stray_temporaries`` clears those a kill left behind.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

TMP_SUFFIX = ".tmp"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step; on any error the old file stays and no temporary remains."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any new file
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def atomic_write_with(path: str | Path, write: Callable[[BinaryIO], Any]) -> None:
    """Replace ``path`` with what ``write(file)`` writes, as ``atomic_write_bytes`` does, for content too
    large to hold twice in memory (``np.save`` of a dataset)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any new file
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (the folder's entry list is itself a file)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some file systems do not open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=_jsonable) + "\n")


def remove_stray_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files that a killed write left in ``folder``; returns them."""
    stray = [p for p in Path(folder).glob(f".*{TMP_SUFFIX}") if p.is_file()]
    for path in stray:
        path.unlink(missing_ok=True)
    return stray


def _jsonable(value: Any) -> Any:
    """numpy scalars/arrays and Paths in JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
