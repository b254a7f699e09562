"""Receptive fields by the standard recurrence, followed through a real forward pass.

For a layer with kernel k (dilated: d*(k-1)+1), stride s and padding p, applied to a map
whose units see r input pixels spaced j apart with the first centred at c (Practical Work 1cd,
question 7; Dumoulin & Visin 2016; Araujo et al. 2019):

    r_out = r_in + (k - 1) * j_in        j_out = j_in * s        c_out = c_in + ((k - 1)/2 - p) * j_in

per axis (H, W). The input has r=1, j=1, c=0.5 (pixel centres). ``FieldTracker`` attaches a
``Field`` to every tensor of a forward pass: leaf modules apply ``layer_field`` in forward
hooks, and every other torch operation (residual ``+``, ``torch.flatten``, slicing) passes on
the widest field of its inputs, so a ResNet block's sum sees its conv branch, not only its
shortcut. A Linear reading a flattened C x h x w map is the h x w convolution of question 5;
global pooling is a window over the whole map. Normalization, activations and dropout do not
change the field. Layers without a rule here (transposed convs, ...) give ``None``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

Pair = tuple[int, int]


@dataclass(frozen=True)
class Field:
    """Receptive field of the units of one feature map, per axis (H, W), in input pixels."""

    size: Pair  # r: pixels one unit sees
    jump: Pair  # j: distance in input pixels between neighbouring units
    start: tuple[float, float]  # c: centre of the first unit's field
    flat_from: tuple[int, int, int] | None = None  # (C, h, w) when the tensor is that map flattened


INPUT_FIELD = Field(size=(1, 1), jump=(1, 1), start=(0.5, 0.5))


def _pair(value) -> Pair:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def through_window(field: Field, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair = (1, 1)) -> Field:
    """The recurrence above for one sliding-window layer."""
    size, jump, start = [], [], []
    for a in (0, 1):
        k = dilation[a] * (kernel[a] - 1) + 1
        size.append(field.size[a] + (k - 1) * field.jump[a])
        start.append(field.start[a] + ((k - 1) / 2 - padding[a]) * field.jump[a])
        jump.append(field.jump[a] * stride[a])
    return Field(size=(size[0], size[1]), jump=(jump[0], jump[1]), start=(start[0], start[1]))


def _conv_padding(module: nn.Conv2d) -> Pair:
    if module.padding == "valid":
        return (0, 0)
    if module.padding == "same":
        (kh, kw), (dh, dw) = module.kernel_size, module.dilation
        return (dh * (kh - 1) // 2, dw * (kw - 1) // 2)
    return _pair(module.padding)


def layer_field(module: nn.Module, field: Field, in_shape: torch.Size, out_shape: torch.Size) -> Field | None:
    """Field of ``module``'s output given its input's; shapes are (N, C, H, W) or (N, F)."""
    if isinstance(module, nn.Conv2d):
        return through_window(field, _pair(module.kernel_size), _pair(module.stride), _conv_padding(module),
                              _pair(module.dilation))
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        stride = module.stride if module.stride is not None else module.kernel_size
        dilation = getattr(module, "dilation", 1)
        return through_window(field, _pair(module.kernel_size), _pair(stride), _pair(module.padding), _pair(dilation))
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        (h, w), (oh, ow) = in_shape[-2:], out_shape[-2:]
        # Exact when the output size divides the input size (the global pooling of the zoo).
        kernel = (math.ceil(h / oh), math.ceil(w / ow))
        # Pooling to 1x1 is one window over the whole map: stride 1 keeps the jump, as for a Linear.
        stride = (h // oh if oh > 1 else 1, w // ow if ow > 1 else 1)
        return through_window(field, kernel, stride, (0, 0))
    if isinstance(module, nn.Linear):
        if field.flat_from and field.flat_from[0] * field.flat_from[1] * field.flat_from[2] == module.in_features:
            return through_window(field, field.flat_from[1:], (1, 1), (0, 0))  # question 5: FC = h x w conv
        return replace(field, flat_from=None)  # a 1x1 conv on a 1x1 map
    if isinstance(module, nn.Flatten) and len(in_shape) == 4:
        return replace(field, flat_from=tuple(in_shape[1:]))
    if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Conv1d, nn.Conv3d)):
        return None
    return field  # elementwise, normalization, dropout: same field


def merge(fields: list[Field | None]) -> Field | None:
    """Field of a tensor computed from several (a residual sum): the widest one wins."""
    known = [f for f in fields if f is not None]
    if not known or len(known) < len(fields):
        return None
    widest = max(known, key=lambda f: f.size[0] * f.size[1])
    jump = (max(f.jump[0] for f in known), max(f.jump[1] for f in known))
    return replace(widest, jump=jump)


class FieldTracker(TorchFunctionMode):
    """Context manager that follows ``Field``s through every torch operation of a forward pass.

    Tensors are keyed by ``id``; the tracker keeps them alive until it exits so ids are not reused.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[int, Field | None] = {}
        self._alive: list[torch.Tensor] = []

    def mark(self, tensor: torch.Tensor, field: Field | None) -> None:
        self.fields[id(tensor)] = field
        self._alive.append(tensor)

    def field_of(self, tensor: torch.Tensor) -> Field | None:
        return self.fields.get(id(tensor))

    def __exit__(self, *exc):
        self._alive.clear()
        return super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = [t for t in _tensors(args) + _tensors(kwargs or {}) if id(t) in self.fields]
        if not inputs:
            return out
        field = merge([self.fields[id(t)] for t in inputs])
        for result in _tensors(out):
            self.mark(result, _reshaped(field, inputs[0], result))
        return out


def _reshaped(field: Field | None, source: torch.Tensor, result: torch.Tensor) -> Field | None:
    """A 4-D map turned 2-D: flattened (same size) or globally reduced (e.g. ``x.mean((2, 3))``)."""
    if field is None or source.dim() != 4 or result.dim() != 2:
        return field
    if result.numel() == source.numel():
        return replace(field, flat_from=tuple(source.shape[1:]))
    return through_window(field, tuple(source.shape[2:]), (1, 1), (0, 0))


def _tensors(obj) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for item in obj for t in _tensors(item)]
    if isinstance(obj, dict):
        return [t for item in obj.values() for t in _tensors(item)]
    return []
