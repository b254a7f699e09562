"""Checkpoints: one file per epoch that holds the weights and the trainer state together.

``checkpoints/epoch-0003.safetensors`` holds the model's state dict under ``model/<name>``,
every tensor of the trainer state (optimizer, schedule, RNG states, ...) under ``state/<i>``,
and one metadata entry, ``cnnlab``: canonical JSON with the schema, the epoch, the trainer
state's structure (tensors replaced by references) and free fields such as the best epoch.

The commit protocol: the file is written to a temporary name and renamed (``cnnlab.atomic``),
so an epoch's weights and trainer state become visible together or not at all, and the
newest epoch file *is* the last checkpoint. After a commit, epoch files other than the newest
and the best are deleted. Nothing is unpickled: safetensors holds only tensors, and the
structure is JSON. One metadata key keeps the bytes identical between identical runs
(safetensors writes several keys in hash order).

Schema 0 runs (before this protocol) have ``best.safetensors`` and ``last.safetensors``; their
weights still load, but they cannot be resumed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save

from cnnlab.atomic import atomic_write_bytes, remove_stray_temporaries
from cnnlab.errors import CnnlabError, first_line

SCHEMA = 1
EPOCH_FILE = re.compile(r"epoch-(\d{4,})\.safetensors")
LEGACY = {"best": "best.safetensors", "last": "last.safetensors"}


@dataclass(frozen=True)
class Checkpoint:
    """A committed checkpoint as read back: weights, trainer state and metadata of one epoch."""

    epoch: int
    weights: dict[str, torch.Tensor]
    state: Any  # what the trainer committed, tensors and arrays restored
    meta: dict[str, Any]


class Checkpoints:
    """The ``checkpoints/`` folder of one run."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path(self, epoch: int) -> Path:
        return self.folder / f"epoch-{epoch:04d}.safetensors"

    def epochs(self) -> list[int]:
        """Committed epochs present, oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.folder.iterdir() if (m := EPOCH_FILE.fullmatch(p.name)))

    def latest(self) -> int | None:
        epochs = self.epochs()
        return epochs[-1] if epochs else None

    def commit(self, epoch: int, weights: Mapping[str, Any], state: Any, meta: Mapping[str, Any],
               keep: Iterable[int] = ()) -> Path:
        """Write epoch ``epoch`` in one atomic step, then delete epoch files other than it and ``keep``."""
        tensors = {f"model/{k}": _tensor(v) for k, v in weights.items()}
        skeleton, state_tensors = encode(state)
        tensors.update({f"state/{i}": t for i, t in enumerate(state_tensors)})
        header = {"schema": SCHEMA, "epoch": epoch, "state": skeleton, "meta": dict(meta),
                  "weights": "numpy" if _is_numpy(weights) else "torch"}
        text = json.dumps(header, sort_keys=True, separators=(",", ":"), allow_nan=False)
        atomic_write_bytes(self.path(epoch), st_save(tensors, metadata={"cnnlab": text}))
        self.prune({epoch, *keep})
        return self.path(epoch)

    def prune(self, keep: set[int]) -> None:
        for epoch in self.epochs():
            if epoch not in keep:
                self.path(epoch).unlink(missing_ok=True)

    def clean(self) -> list[Path]:
        """Remove what a kill can leave: temporary files of interrupted writes."""
        return remove_stray_temporaries(self.folder) if self.folder.is_dir() else []

    def load(self, epoch: int) -> Checkpoint:
        """Read and check epoch ``epoch``'s file: its metadata must name the same epoch."""
        path = self.path(epoch)
        tensors, header = _read(path)
        if header.get("schema") != SCHEMA or header.get("epoch") != epoch:
            raise CnnlabError(f"checkpoint {path} says epoch {header.get('epoch')!r} (schema "
                              f"{header.get('schema')!r}); it does not belong to epoch {epoch}")
        numpy = header.get("weights") == "numpy"
        weights = {k.removeprefix("model/"): (v.numpy() if numpy else v)
                   for k, v in tensors.items() if k.startswith("model/")}
        state_tensors = [tensors[f"state/{i}"] for i in range(sum(k.startswith("state/") for k in tensors))]
        return Checkpoint(epoch, weights, decode(header["state"], state_tensors), header.get("meta", {}))

    def weights(self, which: str | int) -> dict[str, Any]:
        """The weights of an epoch number, of ``"last"``, or of ``"best"`` (the latest checkpoint names it)."""
        epoch = self.resolve(which)
        if epoch is None:
            legacy = self.folder / LEGACY.get(str(which), "")
            if str(which) in LEGACY and legacy.is_file():
                return {k: v for k, v in _read(legacy, legacy=True)[0].items()}
            raise CnnlabError(f"no '{which}' checkpoint in {self.folder}: the run saved no epoch yet")
        return self.load(epoch).weights

    def resolve(self, which: str | int) -> int | None:
        latest = self.latest()
        if which == "last" or latest is None:
            return latest
        if which == "best":
            return self.load(latest).meta.get("best_epoch") or None
        if isinstance(which, int) or str(which).isdigit():
            if int(which) not in self.epochs():
                raise CnnlabError(f"no checkpoint of epoch {which} in {self.folder} (epochs: {self.epochs()})")
            return int(which)
        raise CnnlabError(f"unknown checkpoint '{which}': use best, last or an epoch number")


def _read(path: Path, legacy: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    if not path.is_file():
        raise CnnlabError(f"checkpoint {path} is missing")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        reason = first_line(err)
        raise CnnlabError(f"checkpoint {path} is not a readable safetensors file ({reason})") from err
    if legacy:
        return tensors, meta
    try:
        header = json.loads(meta["cnnlab"])
    except (KeyError, ValueError) as err:
        raise CnnlabError(f"checkpoint {path} has no cnnlab metadata; it was not written by cnnlab") from err
    return tensors, header


def _tensor(value: Any) -> torch.Tensor:
    """A CPU copy that owns its memory (safetensors refuses views and shared storage)."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    return value.detach().to("cpu", copy=True).contiguous()


def _is_numpy(weights: Mapping[str, Any]) -> bool:
    return any(isinstance(v, np.ndarray) for v in weights.values())


# --- the trainer state as JSON + tensors (what torch.save would pickle) ------------------------


def encode(obj: Any) -> tuple[Any, list[torch.Tensor]]:
    """Split ``obj`` (nested dicts, lists, tuples, numbers, strings, tensors, arrays) into a JSON
    skeleton and the list of tensors it references; ``decode`` inverts it exactly."""
    tensors: list[torch.Tensor] = []

    def enc(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            tensors.append(_tensor(x))
            return {"$tensor": len(tensors) - 1}
        if isinstance(x, np.ndarray):
            tensors.append(_tensor(x))
            return {"$ndarray": len(tensors) - 1}
        if isinstance(x, (bool, str)) or x is None:
            return x
        if isinstance(x, (int, np.integer)):
            return int(x)
        if isinstance(x, (float, np.floating)):
            return float(x) if math.isfinite(x) else {"$float": repr(float(x))}
        if isinstance(x, tuple):
            return {"$tuple": [enc(v) for v in x]}
        if isinstance(x, list):
            return [enc(v) for v in x]
        if isinstance(x, Mapping):  # in key order: equal states give equal bytes, however they were built
            items = _sorted_items(x)
            if all(isinstance(k, str) and not k.startswith("$") for k in x):
                return {k: enc(v) for k, v in items}
            return {"$items": [[enc(k), enc(v)] for k, v in items]}
        raise TypeError(f"cannot store {type(x).__name__} in a checkpoint")

    return enc(obj), tensors


def _sorted_items(mapping: Mapping) -> list:
    try:
        return sorted(mapping.items(), key=lambda kv: kv[0])
    except TypeError:  # keys of mixed types: keep their order
        return list(mapping.items())


def decode(skeleton: Any, tensors: list[torch.Tensor]) -> Any:
    def dec(x: Any) -> Any:
        if isinstance(x, list):
            return [dec(v) for v in x]
        if not isinstance(x, dict):
            return x
        if "$tensor" in x:
            return tensors[x["$tensor"]]
        if "$ndarray" in x:
            return tensors[x["$ndarray"]].numpy()
        if "$float" in x:
            return float(x["$float"])
        if "$tuple" in x:
            return tuple(dec(v) for v in x["$tuple"])
        if "$items" in x:
            return {dec(k): dec(v) for k, v in x["$items"]}
        return {k: dec(v) for k, v in x.items()}

    return dec(skeleton)


__all__ = ["Checkpoint", "Checkpoints", "encode", "decode"]
