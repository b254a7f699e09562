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
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.registry import Registry, check_options

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


@runtime_checkable
class FitsToData(Protocol):
    """A model with a layer set from the training data rather than learnt (a frozen whitening
    conv, as airbench's first layer): the engine calls ``fit_to_data`` once, with normalized
    training images (N, C, H, W), before training starts."""

    def fit_to_data(self, images: torch.Tensor) -> None: ...


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
    entry = check_model_options(name, options)
    C, H, W = entry.default_input
    return entry.builder(
        in_chans=in_chans or C,
        num_classes=num_classes or entry.default_classes,
        input_size=tuple(input_size) if input_size else (H, W),
        **options,
    )


def check_model_options(name: str, options: dict[str, Any]) -> ModelEntry:
    """The registered model ``name``, once each of ``options`` is one its builder takes, of the
    kind its default is; a one-line ``CnnlabError`` naming the option otherwise. Nothing is built."""
    entry = MODELS.get(name)
    valid = entry.options()
    check_options(f"model '{name}'", entry.builder, options, exclude=DATA_ARGS)
    for key, value in options.items():
        check_option(name, key, value, valid[key])
    return entry


def check_option(model: str, key: str, value: Any, default: Any) -> None:
    """Raise a one-line ``CnnlabError`` when ``value`` is not of the kind ``default`` is.

    The builder's default says the kind: bool, whole number, number, name, or list. Whole
    numbers and lists of them are layer sizes (at least 1); dropout must lie in [0, 1) and width
    multipliers be positive, whatever the model.
    """
    kinds = [
        (bool, lambda v: isinstance(v, bool), "true or false"),
        (int, lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
        (float, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
        (str, lambda v: isinstance(v, str), "a name"),
        ((tuple, list), lambda v: isinstance(v, (tuple, list)), "a list such as [256, 128]"),
    ]
    for kind, accepts, words in kinds:
        if default is not None and isinstance(default, kind):
            if not accepts(value):
                raise CnnlabError(f"model '{model}' option '{key}' must be {words}, got {value!r}")
            break
    # Layer sizes (fc_dim, n_base, hidden=[...]) are whole numbers of at least 1.
    sizes: list = []
    if isinstance(default, (tuple, list)) and all(isinstance(d, int) for d in default):
        sizes = list(value)
    elif isinstance(default, int) and not isinstance(default, bool):
        sizes = [value]
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in sizes):
        raise CnnlabError(f"model '{model}' option '{key}' takes layer sizes of at least 1, got {value!r}")
    if key == "dropout" and not 0 <= value < 1:
        raise CnnlabError(f"model '{model}' option 'dropout' must be in [0, 1), got {value!r}")
    if key == "width" and value <= 0:
        raise CnnlabError(f"model '{model}' option 'width' must be positive, got {value!r}")


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (only those with ``requires_grad`` if ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class ModelRow(NamedTuple):
    """What ``cnnlab models`` lists about one registered model."""

    name: str
    params: int  # at the design input and classes
    input: tuple[int, int, int]  # design input (C, H, W)
    classes: int
    source: str
    options: dict[str, Any]  # the builder's own options and their defaults


def model_names(pattern: str = "*") -> list[str]:
    """Registered names matching the shell pattern ``pattern``; a one-line error if none does."""
    names = MODELS.names(pattern)
    if not names:
        raise CnnlabError(f"no model matches '{pattern}' (models: {', '.join(MODELS.names())})")
    return names


def model_rows(pattern: str = "*") -> list[ModelRow]:
    """One row per model matching ``pattern``; parameters counted on the meta device (no memory, no init)."""
    rows = []
    for name in model_names(pattern):
        entry = MODELS.get(name)
        with torch.device("meta"):
            params = count_parameters(build_model(name))
        rows.append(ModelRow(name, params, entry.default_input, entry.default_classes, entry.source, entry.options()))
    return rows
