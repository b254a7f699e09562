"""A run's normalization on disk: data.json's ``normalization`` entry and, for the pixel and zca
schemes, the file of their arrays beside it (a mean image, a whitening matrix: 3x32x32 ZCA is a
3072 x 3072 float32 matrix, 38 MB, no place for JSON).

RUN_DIR/normalization.npz holds one .npy per array (``numpy.load`` reads it); data.json names the
file and its sha256, and reading checks both. The archive is written with fixed timestamps, so
the same arrays give the same bytes and the same sha256: a resumed run compares them.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.data.normalize import Normalization, normalization_from_record, upgraded_record
from cnnlab.errors import CnnlabError

NORMALIZATION_FILE = "normalization.npz"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: no clock in the bytes, so the sha256 repeats


@dataclass(frozen=True)
class StoredNormalization:
    """What a run writes for its normalization: data.json's entry, and the files beside it."""

    record: dict[str, Any]  # data.json's normalization
    files: dict[str, bytes] = field(default_factory=dict)  # file name in the run folder -> its bytes


def pack_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz archive of ``arrays`` (uncompressed, sorted by name), the same bytes for the same arrays."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(arrays):
            with archive.open(zipfile.ZipInfo(f"{name}.npy", ZIP_TIME), "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(arrays[name]), allow_pickle=False)
    return buffer.getvalue()


def unpack_arrays(blob: bytes, where: Path) -> dict[str, np.ndarray]:
    """The arrays of an archive ``pack_arrays`` wrote (read from ``where``, for messages)."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise CnnlabError(f"{where} is not a numpy .npz archive ({err}); the file is damaged") from err


def sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def stored_normalization(normalization: Normalization) -> StoredNormalization:
    """data.json's entry for ``normalization`` and, when it has arrays, the file that keeps them."""
    record, arrays = normalization.to_record(), normalization.arrays()
    if not arrays:
        return StoredNormalization(record)
    blob = pack_arrays(arrays)
    return StoredNormalization({**record, "file": NORMALIZATION_FILE, "sha256": sha256(blob)},
                               {NORMALIZATION_FILE: blob})


def read_normalization(folder: Path, record: dict[str, Any]) -> Normalization:
    """The normalization of the run in ``folder`` from data.json's ``record``; the arrays file it
    names must be there, in the folder itself, with the recorded sha256."""
    record = upgraded_record(record)
    name, where = record.get("file"), folder / "data.json"
    if name is None:
        return normalization_from_record(record, where=str(where))
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
        raise CnnlabError(f"{where}: the normalization file {name!r} is not a file name in the run folder; "
                          "data.json is damaged")
    path = folder / name
    if not path.is_file():
        raise CnnlabError(f"{path} is missing: it holds the run's {record['scheme']} normalization (copy the "
                          "whole run folder)")
    blob = path.read_bytes()
    if sha256(blob) != record.get("sha256"):
        raise CnnlabError(f"{path} is damaged or was replaced: its sha256 is not the one data.json records "
                          f"for the {record['scheme']} normalization")
    return normalization_from_record(record, unpack_arrays(blob, path), where=str(where))
