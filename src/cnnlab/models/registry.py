"""The model registry: ``@register_model`` entry points and ``build_model(name, **options)``.

Every builder is a function with keyword-only arguments ``in_chans``, ``num_classes`` and
``input_size`` (H, W) plus its own options (activation, batchnorm, dropout, width, ...). The
options a recipe may set are exactly the builder's keyword arguments, so an unknown option is
reported with the valid ones, and ``cnnlab models`` / ``cnnlab summary`` can list them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.registry import Registry

#: Arguments every builder takes; they follow the dataset, not the recipe's model options.
DATA_ARGS = ("in_chans", "num_classes", "input_size")


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its builder and the input it was designed for."""

    name: str
    builder: Callable[..., nn.Module]
    default_input: tuple[int, int, int]  # (C, H, W) of the lab or paper that defines it
    default_classes: int
    source: str  # the lab report or paper the architecture comes from

    def options(self) -> dict[str, Any]:
        """The builder's own options and their defaults (``in_chans`` etc. excluded)."""
        params = inspect.signature(self.builder).parameters.values()
        return {p.name: p.default for p in params if p.name not in DATA_ARGS}


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(*, input: tuple[int, int, int] = (3, 32, 32), num_classes: int = 10, source: str = ""):
    """Register a builder under its function name, with its design input (C, H, W)."""

    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        missing = [a for a in DATA_ARGS if a not in inspect.signature(builder).parameters]
        if missing:
            raise TypeError(f"model builder {builder.__name__} lacks keyword arguments {missing}")
        MODELS.register(builder.__name__)(ModelEntry(builder.__name__, builder, input, num_classes, source))
        return builder

    return add


def build_model(
    name: str,
    *,
    in_chans: int | None = None,
    num_classes: int | None = None,
    input_size: tuple[int, int] | None = None,
    **options: Any,
) -> nn.Module:
    """Build a registered model; data arguments default to the model's design input.

    Raises ``CnnlabError`` for an unknown name or option, or an input too small for the net.
    """
    entry = MODELS.get(name)
    valid = entry.options()
    for key in options:
        if key not in valid:
            raise CnnlabError(
                f"model '{name}' has no option '{key}'{did_you_mean(key, valid)} "
                f"(valid: {', '.join(sorted(valid)) or 'none'})"
            )
    C, H, W = entry.default_input
    return entry.builder(
        in_chans=in_chans or C,
        num_classes=num_classes or entry.default_classes,
        input_size=tuple(input_size) if input_size else (H, W),
        **options,
    )


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
