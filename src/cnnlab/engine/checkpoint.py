"""Checkpoints: model weights as safetensors, trainer state as a weights-only torch file.

Nothing is ever loaded with a full unpickler: safetensors holds only tensors (read them back
with ``cnnlab.models.read_state_dict``), and the trainer state (optimizer, scheduler, RNG
states, epoch) is loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as st_save
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.atomic import atomic_write_bytes


def save_weights(path: str | Path, model: nn.Module, metadata: dict[str, Any] | None = None) -> None:
    """Write the model's state dict (parameters and buffers) atomically as safetensors."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {k: str(v) for k, v in (metadata or {}).items()}
    atomic_write_bytes(path, st_save(tensors, metadata=meta))


def save_train_state(path: str | Path, state: dict[str, Any]) -> None:
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_train_state(path: str | Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError) as err:
        raise CnnlabError(f"cannot read trainer state {path}: {str(err).splitlines()[0]}") from err
