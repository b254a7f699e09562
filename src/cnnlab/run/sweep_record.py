"""A sweep folder's record, as ``cnnlab sweep`` writes it and ``cnnlab sweep --resume`` and
``cnnlab compare`` read it: ``sweep.json`` (the spec, the metric, the study's name and its storage
URL with the password left out), and how to reach that storage.

Here, below both the sweep runner and the comparison, so that the two read one file one way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError

SWEEP_FILE = "sweep.json"
CONNECT_TIMEOUT_S = 5  # an unreachable database server is an error in seconds, not a hang
SQLITE_BUSY_S = 30  # a worker waits this long for another's write lock instead of failing


def read_sweep_record(sweep_dir: str | Path) -> dict[str, Any]:
    """sweep.json of ``sweep_dir`` as a dict; a one-line error when it is missing or damaged."""
    path = Path(sweep_dir) / SWEEP_FILE
    if not path.is_file():
        raise CnnlabError(f"{sweep_dir} is not a cnnlab sweep folder (no {SWEEP_FILE})")
    try:
        record = json.loads(path.read_text())
    except ValueError as err:
        raise CnnlabError(f"{path} is not valid JSON ({err}); the file is damaged") from err
    if not isinstance(record, dict):
        raise CnnlabError(f"{path} is damaged: expected a JSON object")
    return record


def study_url(url: str, sweep_dir: str | Path) -> str | None:
    """The study's storage URL; a SQLite file moved with its sweep folder is found there. None
    when the SQLite file is gone (opening it would create an empty one)."""
    if not url.startswith("sqlite:///"):
        return url
    file = Path(url.removeprefix("sqlite:///"))
    if file.is_file():
        return url
    moved = Path(sweep_dir) / file.name
    return f"sqlite:///{moved.resolve()}" if moved.is_file() else None


def connect_args(url: str) -> dict[str, Any]:
    """SQLAlchemy's ``connect_args`` for the storage: a connect timeout for a server, a lock wait for SQLite."""
    if url.startswith("postgresql"):
        return {"connect_timeout": CONNECT_TIMEOUT_S}
    if url.startswith("sqlite"):
        return {"timeout": SQLITE_BUSY_S}
    return {}


def redact(url: str) -> str:
    """The URL without its password."""
    head, at, tail = url.rpartition("@")
    if not at or "://" not in head:
        return url
    scheme, _, user = head.partition("://")
    if ":" not in user:
        return url
    return f"{scheme}://{user.partition(':')[0]}:***@{tail}"
