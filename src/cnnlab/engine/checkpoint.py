"""Checkpoints: model weights as safetensors, trainer state as a weights-only torch file.

Nothing is ever loaded with a full unpickler: safetensors holds only tensors, and the trainer
state (optimizer, scheduler, RNG states, epoch) is loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.run.atomic import atomic_torch_save, atomic_write_bytes


def save_weights(path: str | Path, model: nn.Module, metadata: dict[str, Any] | None = None) -> None:
    """Write the model's state dict (parameters and buffers) atomically as safetensors."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    meta = {k: str(v) for k, v in (metadata or {}).items()}
    atomic_write_bytes(path, st_save(tensors, metadata=meta))


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors (or weights-only torch) state dict onto the CPU."""
    path = Path(path)
    if not path.is_file():
        raise CnnlabError(f"checkpoint {path} not found")
    try:
        if path.suffix == ".safetensors":
            return st_load(path.read_bytes())
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, RuntimeError, OSError, EOFError) as err:
        raise CnnlabError(f"cannot read checkpoint {path}: {str(err).splitlines()[0]}") from err
    if isinstance(state, dict) and "state_dict" in state:  # common wrapper of other tools
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CnnlabError(f"{path} does not hold a state dict of tensors")
    return state


def save_train_state(path: str | Path, state: dict[str, Any]) -> None:
    atomic_torch_save(path, state)


def load_train_state(path: str | Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError) as err:
        raise CnnlabError(f"cannot read trainer state {path}: {str(err).splitlines()[0]}") from err
