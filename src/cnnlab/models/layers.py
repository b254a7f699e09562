"""Pieces shared by the model files: activations by name, optional layers, shape inference."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from cnnlab.errors import CnnlabError, first_line, unknown_name

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


def scaled(channels: int, width: float) -> int:
    """``channels`` times the width multiplier, at least 1 (``width=0.5`` halves every layer)."""
    return max(1, round(channels * width))


def batchnorm2d(channels: int, enabled: bool) -> nn.Module:
    """BatchNorm2d when ``enabled``, else Identity (kept so both variants share module names)."""
    return nn.BatchNorm2d(channels) if enabled else nn.Identity()


def dropout(p: float) -> nn.Module:
    """Dropout(p) for p > 0, else Identity: a net without dropout has no stochastic layer."""
    return nn.Dropout(p) if p > 0 else nn.Identity()


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode, then give every submodule back its own train/eval flag."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            m.training = training


# What PyTorch says when a map is smaller than a kernel or a pooling window.
_TOO_SMALL = ("Kernel size can't be greater", "Output size is too small", "output size is too small")
LARGER = "give it larger images (a recipe's data.image_size, such as [64, 64], resizes any dataset)"


def forward_error(err: RuntimeError, layer: str | None, shape: tuple[int, int, int]) -> CnnlabError:
    """One-line error for a forward pass of one ``shape`` (C, H, W) image that failed in ``layer``."""
    C, H, W = shape
    where = f"layer '{layer}'" if layer else "the first layer"
    if any(text in str(err) for text in _TOO_SMALL):
        return CnnlabError(f"input {C}x{H}x{W} is too small for this net: the output of {where} would be empty; "
                           f"{LARGER}")
    reason = first_line(err)
    return CnnlabError(f"input {C}x{H}x{W} does not fit this net: {where} fails ({reason})")


def feature_shape(
    features: nn.Module, in_chans: int, input_size: tuple[int, int], *, prefix: str = ""
) -> tuple[int, int, int]:
    """(C, H, W) that ``features`` gives for one image of ``in_chans`` x ``input_size``.

    Runs one zero image through the layers in eval mode (BatchNorm statistics untouched), on the
    current default device, so building under ``torch.device('meta')`` costs nothing. When a
    layer would produce an empty map the error names that layer, e.g. ``input 1x8x8 is too small for this net: the output of 'pool3' ...``;
    ``prefix`` is put before the names ("features.").
    """
    H, W = input_size
    entered: list[str] = []
    hooks = [
        module.register_forward_pre_hook(lambda m, args, name=name: entered.append(name))
        for name, module in features.named_modules()
        if name and not list(module.children())
    ]
    try:
        # Eval mode: in train mode the probe image would update every BatchNorm's running statistics.
        with torch.no_grad(), eval_mode(features):
            out = features(torch.zeros(1, in_chans, H, W))
    except RuntimeError as err:
        raise forward_error(err, prefix + entered[-1] if entered else None, (in_chans, H, W)) from err
    finally:
        for hook in hooks:
            hook.remove()
    if out.dim() != 4 or 0 in out.shape:
        raise CnnlabError(
            f"input {in_chans}x{H}x{W} is too small for this net: its feature map is {tuple(out.shape[1:])}; {LARGER}"
        )
    return tuple(out.shape[1:])  # type: ignore[return-value]
