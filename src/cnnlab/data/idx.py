"""Reader and writer for the IDX format of MNIST and Fashion-MNIST (LeCun et al.).

An IDX file is: two zero bytes, a type code (0x08 = unsigned byte), the number of
dimensions D, then D big-endian uint32 sizes and the data in C order. Every field is
checked, so a truncated download or a wrong file says what is wrong instead of reshaping
garbage.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from cnnlab.atomic import atomic_write_bytes
from cnnlab.errors import CnnlabError

# IDX type codes -> numpy dtypes (big-endian where it matters).
IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError; a bad deflate stream, zlib's
        raise CnnlabError(f"cannot read IDX file {path}: {err}; download it again") from err


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally .gz) into an array of its stored shape and type."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise CnnlabError(f"{path} is not an IDX file: bad magic bytes {raw[:4].hex() or '(empty)'}")
    type_code, ndim = raw[2], raw[3]
    if type_code not in IDX_TYPES:
        raise CnnlabError(f"{path}: unknown IDX type code 0x{type_code:02x}")
    if ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise CnnlabError(f"{path}: IDX header is truncated ({ndim} dimensions declared)")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = IDX_TYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    body = raw[4 + 4 * ndim :]
    if len(body) != expected:
        raise CnnlabError(
            f"{path}: header says shape {dims} ({expected} bytes of data) but the file holds {len(body)} bytes"
        )
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as IDX (gzip-compressed when the name ends in .gz)."""
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array).astype(IDX_TYPES[code]).tobytes()
    path = Path(path)
    atomic_write_bytes(path, gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
