"""What every normalization scheme gives, and the two ways it runs: as a module and in the loader.

A scheme is three tensors (``NormTensors``): a mean and a std that broadcast over a batch (per
channel (1, C, 1, 1) or per pixel (1, C, H, W)), and for ZCA a (D, D) matrix applied after centring.
Everything that feeds the model applies the same rule,

    x = pixels / 255;  x = (x - mean) / std;  x = flatten(x) @ matrix  (ZCA only),

through ``Normalize``, the ``nn.Module`` that ``normalize`` runs eagerly and that export folds into
its graph, or, in ``DeviceLoader``, through ``DeviceNormalize``, which fuses the scaling into one
subtract and one multiply on the device.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from torch import nn


class NormTensors(NamedTuple):
    """A scheme's operands in float32, in [0, 1] pixel units."""

    mean: torch.Tensor  # (1, C, 1, 1) per channel, (1, C, H, W) per pixel or ZCA
    std: torch.Tensor | None  # as mean; None for ZCA (no division)
    matrix: torch.Tensor | None  # (D, D), D = C*H*W: ZCA's whitening matrix; None otherwise


class Normalize(nn.Module):
    """uint8 images (N, C, H, W) -> float32, normalized. The operands are buffers: they travel with
    ``state_dict`` and become constants of an exported graph."""

    def __init__(self, tensors: NormTensors) -> None:
        super().__init__()
        self.register_buffer("mean", tensors.mean)
        self.register_buffer("std", tensors.std)
        self.register_buffer("matrix", tensors.matrix)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255  # (N, C, H, W) in [0, 1]
        x = x - self.mean
        if self.std is not None:
            x = x / self.std
        if self.matrix is not None:  # ZCA: each centred image, flattened, times the whitening matrix
            x = (x.flatten(1) @ self.matrix).view_as(x)  # (N, D) @ (D, D) -> (N, C, H, W)
        return x


class DeviceNormalize:
    """What ``DeviceLoader`` runs on a float32 batch of pixel values in [0, 255] (B, C, H, W), any
    layout, on ``device``: (x / 255 - mean) / std == (x - 255 mean) * (1 / (255 std)), one subtract
    and one multiply in place; ZCA then multiplies by its matrix / 255."""

    def __init__(self, tensors: NormTensors, device: torch.device) -> None:
        self.shift = 255.0 * tensors.mean.to(device)
        self.scale = None if tensors.std is None else 1.0 / (255.0 * tensors.std.to(device))
        self.matrix = None if tensors.matrix is None else tensors.matrix.to(device) / 255.0  # (D, D)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.sub_(self.shift)
        if self.scale is not None:
            x = x.mul_(self.scale)
        if self.matrix is not None:
            x = (x.flatten(1) @ self.matrix).view(x.shape)  # (B, D) @ (D, D) -> (B, C, H, W), contiguous
        return x


class Normalization(ABC):
    """One normalization scheme, fit on the train split (``cnnlab.data.normalize.fit_normalization``).

    ``to_record()`` is data.json's entry (small values: JSON); ``arrays()`` are the large ones (an image
    of means, a whitening matrix) that the run folder keeps in a file beside it.
    """

    scheme: str
    array_names: ClassVar[tuple[str, ...]] = ()  # the names ``arrays()`` gives

    @abstractmethod
    def tensors(self) -> NormTensors:
        """The operands of the rule, float32 on the CPU."""

    @abstractmethod
    def to_record(self) -> dict[str, Any]:
        """data.json's ``normalization``: the scheme and its small values (JSON)."""

    def arrays(self) -> dict[str, np.ndarray]:
        """The large values, by name, kept in a file beside data.json; none for per-channel schemes."""
        return {}

    @classmethod
    @abstractmethod
    def from_record(cls, record: dict[str, Any], arrays: dict[str, np.ndarray]) -> Normalization:
        """The scheme back from ``to_record()``'s entry (with its scheme) and ``arrays()``."""

    @abstractmethod
    def rule(self) -> dict[str, Any]:
        """preprocessing.json's ``normalize``: the rule in words, and its values or the arrays it names."""

    @abstractmethod
    def describe(self) -> str:
        """One line for people: the scheme and what it does (``cnnlab data stats`` prints it)."""

    @abstractmethod
    def rows(self) -> tuple[list[str], list[list[str]]]:
        """Its values in brief, as a table (headers, rows): per channel the mean and std, per pixel and for
        ZCA the range of each array; no rows for none."""

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        """The (C, H, W) the scheme applies to (per pixel, ZCA); None when it applies at any size (per channel)."""
        return None

    def module(self) -> Normalize:
        """The scheme as an ``nn.Module`` (buffers), uint8 (N, C, H, W) -> float32 (N, C, H, W)."""
        return Normalize(self.tensors())

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (N, C, H, W), a torch tensor, -> float32 normalized, on the images' device."""
        return self.module().to(images.device)(images)

    def on_device(self, device: torch.device | str) -> DeviceNormalize:
        """The rule for ``DeviceLoader``, its operands moved to ``device`` once."""
        return DeviceNormalize(self.tensors(), torch.device(device))


ARRAY_HEADERS = ["array", "shape", "min", "max"]  # rows() of the schemes with arrays (pixel, zca)


def array_row(name: str, values: np.ndarray) -> list[str]:
    """['mean image', '1x28x28', '0', '0.8123']: an array's shape and range, for ``rows()``."""
    return [name, "x".join(map(str, values.shape)), f"{float(np.min(values)):.4g}", f"{float(np.max(values)):.4g}"]
