"""Reading weight files and loading them into a model, with one-line errors on mismatch.

Used by the torchvision nets' ``weights=PATH`` option, and meant for fine-tuning and for
resuming from checkpoints: ``load_matching_state_dict`` refuses a state dict whose keys or
shapes differ from the model's and names each difference, e.g.
``checkpoint 'run/best.pt' does not match the model: shape mismatch in 1 tensor:
classifier.fc5.weight (10, 1000) in the file vs (15, 1000) in the model``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from cnnlab.errors import CnnlabError, first_line

#: Keys under which common checkpoint layouts keep the model's state dict.
NESTED_KEYS = ("model", "state_dict", "model_state_dict")
LISTED = 6  # differences named in an error before "and N more"


class LoadResult(NamedTuple):
    missing: list[str]  # in the model, not in the state dict (only when strict=False)
    unexpected: list[str]  # in the state dict, not in the model (only when strict=False)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file or a ``torch.save``d state dict (``weights_only`` load).

    A checkpoint that nests the state dict under ``model``/``state_dict`` is unwrapped, and
    the ``module.`` prefix of ``DataParallel`` is dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise CnnlabError(f"weights file '{path}' does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling and format errors come in many types
        reason = first_line(err)
        raise CnnlabError(f"cannot read weights file '{path}': {reason}") from err
    for key in NESTED_KEYS:
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CnnlabError(f"weights file '{path}' holds no state dict (a mapping of names to tensors)")
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return dict(state)


def _listing(items: Iterable[str]) -> str:
    items = list(items)
    shown = ", ".join(items[:LISTED])
    return shown + (f" and {len(items) - LISTED} more" if len(items) > LISTED else "")


def load_matching_state_dict(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    strict: bool = True,
    source: str = "state dict",
) -> LoadResult:
    """Copy ``state_dict`` into ``model`` after checking that every shared key has the same shape.

    Raises one ``CnnlabError`` line listing each mismatched key with both shapes and, when
    ``strict``, the missing and unexpected keys. ``source`` names the file in the message.
    """
    own = model.state_dict()
    mismatched = [
        f"{key} {tuple(value.shape)} in the file vs {tuple(own[key].shape)} in the model"
        for key, value in state_dict.items()
        if key in own and tuple(value.shape) != tuple(own[key].shape)
    ]
    missing = [key for key in own if key not in state_dict]
    unexpected = [key for key in state_dict if key not in own]
    problems = []
    if mismatched:
        plural = "s" if len(mismatched) > 1 else ""
        problems.append(f"shape mismatch in {len(mismatched)} tensor{plural}: {_listing(mismatched)}")
    if strict and missing:
        problems.append(f"missing keys: {_listing(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected keys: {_listing(unexpected)}")
    if problems:
        raise CnnlabError(f"{source} does not match the model: {'; '.join(problems)}")
    model.load_state_dict(dict(state_dict), strict=False)
    return LoadResult(missing=missing, unexpected=unexpected)
