"""Normalization schemes (``data.normalize``), fit on the training split only, never val or test.

  none      x / 255
  channel   per-channel standardization (CS 6476 part 1, practical work 20): the default
  pixel     the mean image and the per-pixel std image (practical work 1cd Q19-20)
  zca       ZCA whitening (Q21; ``normalize_zca``)
  imagenet  the fixed mean and std torchvision's pretrained weights expect
  fixed     ``data.normalize_mean`` / ``data.normalize_std``, one value per channel

Every scheme is a ``Normalization`` (``normalize_base``): ``normalize(images)``, ``module()`` for
export, ``on_device(device)`` for the loader, ``to_record()`` / ``arrays()`` for the run folder.

The statistics come from one vectorized streaming pass: each chunk contributes its count, mean and
sum of squared deviations (per channel, or per pixel), and chunks merge with Chan et al.'s parallel
update, which stays exact where the naive E[x^2] - E[x]^2 loses precision. This is what
scikit-learn's ``StandardScaler.partial_fit`` does, without a Python loop over images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from cnnlab.config.schema import DataConfig
from cnnlab.data.normalize_base import ARRAY_HEADERS, Normalization, NormTensors, array_row
from cnnlab.data.normalize_zca import Whitening, check_zca_size, fit_zca
from cnnlab.errors import CnnlabError, unknown_name

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB, [0, 1] units: what torchvision's ImageNet weights were trained on
IMAGENET_STD = (0.229, 0.224, 0.225)
CONSTANT = 1e-8  # a std below this is a constant channel or pixel: left centred, not divided by ~0
PIXEL_CHUNK_VALUES = 1 << 22  # float64 values per chunk of the per-pixel fit: 32 MB whatever the image size
PER_CHANNEL_SUMMARY = {
    "none": "none: x = pixels / 255, not normalized",
    "channel": "channel: (x / 255 - mean[c]) / std[c], the mean and std of each channel",
    "imagenet": "imagenet: (x / 255 - mean[c]) / std[c] with torchvision's ImageNet mean and std",
    "fixed": "fixed: (x / 255 - mean[c]) / std[c] with data.normalize_mean and data.normalize_std",
}
PER_CHANNEL_RULES = {
    "none": "x = pixels / 255 (mean 0 and std 1: no normalization)",
    "channel": "x = pixels / 255, then (x - mean[c]) / std[c] for each channel c (fit on the train split)",
    "imagenet": "x = pixels / 255, then (x - mean[c]) / std[c] for each channel c (torchvision's ImageNet values)",
    "fixed": "x = pixels / 255, then (x - mean[c]) / std[c] for each channel c (the recipe's values)",
}


@dataclass(frozen=True)
class ChannelStats(Normalization):
    """A per-channel mean and std in [0, 1] pixel units: the none, channel, imagenet and fixed schemes."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    scheme: str = "channel"

    def tensors(self) -> NormTensors:
        C = len(self.mean)
        return NormTensors(torch.tensor(self.mean, dtype=torch.float32).view(1, C, 1, 1),
                           torch.tensor(self.std, dtype=torch.float32).view(1, C, 1, 1), None)

    def to_record(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "mean": list(self.mean), "std": list(self.std)}

    def rule(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "rule": PER_CHANNEL_RULES[self.scheme],
                "mean": list(self.mean), "std": list(self.std)}

    def describe(self) -> str:
        return PER_CHANNEL_SUMMARY[self.scheme]

    def rows(self) -> tuple[list[str], list[list[str]]]:
        if self.scheme == "none":
            return [], []
        return ["channel", "mean", "std"], [[str(c), f"{m:.4f}", f"{s:.4f}"]
                                            for c, (m, s) in enumerate(zip(self.mean, self.std))]

    @classmethod
    def identity(cls, channels: int) -> ChannelStats:
        """The none scheme: mean 0 and std 1 for each of ``channels``."""
        return cls((0.0,) * channels, (1.0,) * channels, "none")

    @classmethod
    def from_record(cls, record: dict[str, Any], arrays: dict[str, np.ndarray]) -> ChannelStats:
        return cls(tuple(float(m) for m in record["mean"]), tuple(float(s) for s in record["std"]), record["scheme"])


@dataclass(frozen=True, eq=False)
class PixelStats(Normalization):
    """The mean image and the per-pixel std image of the training images, in [0, 1] pixel units."""

    mean: np.ndarray  # (C, H, W) float64
    std: np.ndarray  # (C, H, W) float64; 1 where the pixel is constant over the training images
    scheme: ClassVar[str] = "pixel"
    array_names: ClassVar[tuple[str, ...]] = ("mean", "std")

    def tensors(self) -> NormTensors:
        return NormTensors(torch.from_numpy(self.mean.astype(np.float32))[None],  # (1, C, H, W)
                           torch.from_numpy(self.std.astype(np.float32))[None], None)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.mean.shape

    def to_record(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "shape": list(self.mean.shape)}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "std": self.std}

    def rule(self) -> dict[str, Any]:
        return {"scheme": self.scheme,
                "rule": "x = pixels / 255, then (x - mean[c, h, w]) / std[c, h, w] for each pixel (fit on the "
                        "train split)",
                "arrays": {"mean": list(self.mean.shape), "std": list(self.std.shape)}}

    def describe(self) -> str:
        constant = int((self.std == 1.0).sum())
        return ("pixel: (x / 255 - mean image) / std image" +
                (f"; {constant} constant pixel(s) keep std 1" if constant else ""))

    def rows(self) -> tuple[list[str], list[list[str]]]:
        return ARRAY_HEADERS, [array_row("mean image", self.mean), array_row("std image", self.std)]

    @classmethod
    def from_record(cls, record: dict[str, Any], arrays: dict[str, np.ndarray]) -> PixelStats:
        return cls(np.asarray(arrays["mean"], np.float64), np.asarray(arrays["std"], np.float64))


# --- fitting ------------------------------------------------------------------------------------


def merge_moments(n_a, mean_a, m2_a, n_b, mean_b, m2_b):
    """Combine (count, mean, M2) of two disjoint parts (Chan, Golub & LeVeque 1979)."""
    n = n_a + n_b
    delta = mean_b - mean_a
    mean = mean_a + delta * (n_b / n)
    m2 = m2_a + m2_b + delta**2 * (n_a * n_b / n)
    return n, mean, m2


def _streaming_std(images: np.ndarray, rows: int, moments) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) std of uint8 images (N, C, H, W) in [0, 1] units, ``rows`` images at a
    time: ``moments(x)`` gives a float64 chunk's (count, mean, M2) over the axes it reduces, and the
    chunks merge exactly. A std below CONSTANT (a constant channel or pixel) becomes 1: centred, not
    divided by ~0."""
    n, mean, m2 = 0, 0.0, 0.0
    for start in range(0, len(images), rows):
        x = images[start : start + rows].astype(np.float64) / 255.0  # (n_b, C, H, W)
        n, mean, m2 = merge_moments(n, mean, m2, *moments(x))
    std = np.sqrt(m2 / max(n, 1))
    std[std < CONSTANT] = 1.0
    return mean, std


def _channel_moments(x: np.ndarray):
    x = x.transpose(1, 0, 2, 3).reshape(x.shape[1], -1)  # (C, n_b*H*W)
    mean = x.mean(axis=1)
    return x.shape[1], mean, ((x - mean[:, None]) ** 2).sum(axis=1)


def _pixel_moments(x: np.ndarray):
    mean = x.mean(axis=0)  # (C, H, W)
    return len(x), mean, ((x - mean) ** 2).sum(axis=0)


def fit_channel_stats(images: np.ndarray, chunk: int = 8192) -> ChannelStats:
    """Mean and (population) std per channel of uint8 images (N, C, H, W), as fractions of 255."""
    mean, std = _streaming_std(images, chunk, _channel_moments)
    return ChannelStats(tuple(mean.tolist()), tuple(std.tolist()))


def fit_pixel_stats(images: np.ndarray, chunk: int | None = None) -> PixelStats:
    """The mean image and (population) std image of uint8 images (N, C, H, W), as fractions of 255."""
    N, C, H, W = images.shape
    mean, std = _streaming_std(images, chunk or max(1, PIXEL_CHUNK_VALUES // (C * H * W)), _pixel_moments)
    return PixelStats(mean, std)


def check_normalization(data: DataConfig, shape: tuple[int, int, int]) -> str:
    """The scheme ``data.normalize`` names for images of ``shape`` (C, H, W); one line for what does not fit."""
    scheme = scheme_name(data.normalize)
    C = shape[0]
    if scheme == "imagenet" and C != 3:
        raise CnnlabError(f"data.normalize: imagenet's mean and std are for RGB images, but these have {C} "
                          "channel(s); set data.channels: 3")
    for key in ("normalize_mean", "normalize_std"):
        values = getattr(data, key)
        if scheme != "fixed" and values is not None:  # would be silently ignored
            raise CnnlabError(f"data.{key} is set but data.normalize is {scheme}, which does not read it; "
                              f"set data.normalize: fixed to use it, or remove data.{key}")
        if scheme == "fixed" and values is None:
            raise CnnlabError(f"data.normalize: fixed needs data.{key}, one value per channel in [0, 1] "
                              f"pixel units (e.g. [{', '.join(['0.5'] * C)}])")
        if scheme == "fixed" and len(values) != C:
            raise CnnlabError(f"data.{key} has {len(values)} value(s) but the images have {C} channel(s); "
                              "give one per channel")
    if scheme == "zca":
        check_zca_size(shape)
    return scheme


FITS: dict[str, Callable[[DataConfig, np.ndarray], Normalization]] = {
    "none": lambda data, images: ChannelStats.identity(images.shape[1]),
    "channel": lambda data, images: fit_channel_stats(images),
    "pixel": lambda data, images: fit_pixel_stats(images),
    "zca": lambda data, images: fit_zca(images, data.zca_epsilon),
    "imagenet": lambda data, images: ChannelStats(IMAGENET_MEAN, IMAGENET_STD, "imagenet"),
    "fixed": lambda data, images: ChannelStats(tuple(data.normalize_mean), tuple(data.normalize_std), "fixed"),
}
SCHEMES = tuple(FITS)  # config.schema.NormalizeName lists the same names
KINDS: dict[str, type] = {"none": ChannelStats, "channel": ChannelStats, "pixel": PixelStats, "zca": Whitening,
                          "imagenet": ChannelStats, "fixed": ChannelStats}


def scheme_name(value: str | bool) -> str:
    """``data.normalize`` as a scheme name: recipes before the schemes wrote true (channel) or false (none)."""
    if isinstance(value, bool):
        return "channel" if value else "none"
    if value not in FITS:
        raise unknown_name("data.normalize scheme", str(value), SCHEMES)
    return value


def fit_normalization(data: DataConfig, train_images: np.ndarray) -> Normalization:
    """``data.normalize`` fit on ``train_images``, uint8 (N, C, H, W): the train split alone."""
    scheme = check_normalization(data, train_images.shape[1:])
    return FITS[scheme](data, train_images)


# --- reading a record back ------------------------------------------------------------------------


def upgraded_record(record: dict[str, Any]) -> dict[str, Any]:
    """data.json's normalization with its scheme: runs before the schemes recorded a bare per-channel
    mean and std, which was ``none`` when it was all zeros and ones and ``channel`` otherwise."""
    if "scheme" in record:
        return dict(record)
    identity = all(m == 0 for m in record.get("mean", ())) and all(s == 1 for s in record.get("std", ()))
    return {"scheme": "none" if identity else "channel", **record}


def normalization_from_record(record: dict[str, Any], arrays: dict[str, np.ndarray] | None = None,
                              where: str = "data.json") -> Normalization:
    """The ``Normalization`` of data.json's ``record`` and, for pixel and zca, the ``arrays`` of the file
    it names (``cnnlab.run.normalization`` reads and checks that file)."""
    record = upgraded_record(record)
    kind = KINDS.get(record["scheme"])
    if kind is None:
        raise CnnlabError(f"{where}: normalization scheme {record['scheme']!r} is not one this cnnlab knows "
                          f"({', '.join(SCHEMES)}); upgrade cnnlab")
    if kind is ChannelStats and not {"mean", "std"} <= record.keys():
        raise CnnlabError(f"{where}: the {record['scheme']} normalization lacks its mean or std; the file is damaged")
    missing = [name for name in kind.array_names if name not in (arrays or {})]
    if missing:
        raise CnnlabError(f"{where}: the {record['scheme']} normalization's file lacks {', '.join(missing)}; "
                          "the file is damaged")
    return kind.from_record(record, arrays or {})


__all__ = ["SCHEMES", "IMAGENET_MEAN", "IMAGENET_STD", "Normalization", "ChannelStats", "PixelStats", "Whitening",
           "fit_channel_stats", "fit_pixel_stats", "fit_zca", "fit_normalization", "check_normalization",
           "scheme_name", "normalization_from_record", "upgraded_record"]
