"""Pieces shared by the model files: activations by name and feature-map shape inference."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import CnnlabError, unknown_name

# Names a recipe may give ``model.activation``; swish is SiLU (x * sigmoid(x), ECE 661 lab 2).
ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.01, inplace=True),
    "swish": nn.SiLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "elu": lambda: nn.ELU(inplace=True),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module for ``name`` (one of ``ACTIVATIONS``)."""
    if name not in ACTIVATIONS:
        raise unknown_name("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]()


def feature_shape(features: nn.Module, in_chans: int, input_size: tuple[int, int]) -> tuple[int, int, int]:
    """(C, H, W) that ``features`` gives for one image of ``in_chans`` x ``input_size``.

    Runs one zero image through the layers. When a layer would produce an empty map the error
    names that layer, e.g. ``input 1x8x8 is too small for this net: the output of 'pool3' ...``.
    """
    H, W = input_size
    entered: list[str] = []
    hooks = [
        module.register_forward_pre_hook(lambda m, args, name=name: entered.append(name))
        for name, module in features.named_modules()
        if name and not list(module.children())
    ]
    try:
        with torch.no_grad():
            out = features(torch.zeros(1, in_chans, H, W))
    except RuntimeError as err:
        layer = entered[-1] if entered else "the first layer"
        raise CnnlabError(
            f"input {in_chans}x{H}x{W} is too small for this net: the output of layer '{layer}' would be empty"
        ) from err
    finally:
        for hook in hooks:
            hook.remove()
    if out.dim() != 4 or 0 in out.shape:
        raise CnnlabError(f"input {in_chans}x{H}x{W} is too small for this net: its feature map is {tuple(out.shape[1:])}")
    return tuple(out.shape[1:])  # type: ignore[return-value]
