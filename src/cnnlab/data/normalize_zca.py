"""ZCA whitening (practical work 1cd Q21; Krizhevsky 2009, "Learning multiple layers of features
from tiny images", appendix A), fit on the training split.

Each image is flattened to D = C*H*W values in [0, 1]. With mu the mean image and Sigma = X^T X / N
the covariance of the centred training images, Sigma = U diag(l) U^T, and

    W = U diag(1 / sqrt(l + eps)) U^T,    x -> (x - mu) @ W.

Unlike PCA whitening, W rotates back into pixel space, so a whitened image still looks like an image
(edges kept, flat regions flattened). ``eps`` keeps the tiny eigenvalues (pixel noise) from being
blown up. The fit runs in float64: X^T X is summed chunk by chunk (never the (N, D) float copy),
then one (D, D) eigendecomposition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from cnnlab.data.normalize_base import ARRAY_HEADERS, Normalization, NormTensors, array_row
from cnnlab.errors import CnnlabError

CHUNK_VALUES = 1 << 22  # float64 values per chunk of centred images: 32 MB whatever the image size
MAX_DIMS = 4096  # eigh of a D x D matrix costs ~D^3: 4096 (64x64 gray; 3x32x32 is 3072) takes ~30 s on 2 cores


@dataclass(frozen=True, eq=False)
class Whitening(Normalization):
    """ZCA: the mean image and the whitening matrix of the training images."""

    mean: np.ndarray  # (C, H, W) float64, in [0, 1] pixel units
    matrix: np.ndarray  # (D, D) float32, symmetric: U diag(1 / sqrt(l + eps)) U^T
    eigenvalues: np.ndarray  # (D,) float64, ascending: the spectrum of the training covariance
    epsilon: float
    scheme: ClassVar[str] = "zca"
    array_names: ClassVar[tuple[str, ...]] = ("mean", "matrix", "eigenvalues")

    def tensors(self) -> NormTensors:
        mean = torch.from_numpy(self.mean.astype(np.float32))[None]  # (1, C, H, W)
        return NormTensors(mean, None, torch.from_numpy(np.ascontiguousarray(self.matrix, dtype=np.float32)))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.mean.shape

    def to_record(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "epsilon": self.epsilon, "shape": list(self.mean.shape)}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "matrix": self.matrix, "eigenvalues": self.eigenvalues}

    def rule(self) -> dict[str, Any]:
        C, H, W = self.mean.shape
        D = C * H * W
        return {"scheme": self.scheme,
                "rule": f"x = pixels / 255, flattened to D = C*H*W = {D} values (channel, row, column order); "
                        "then (x - mean) @ matrix, reshaped back to (C, H, W)",
                "epsilon": self.epsilon,
                "arrays": {"mean": [C, H, W], "matrix": [D, D]}}

    def describe(self) -> str:
        low, high = self.eigenvalues.min(), self.eigenvalues.max()
        return (f"zca: (x / 255 - mean image) @ W, whitening {self.matrix.shape[0]} values per image; "
                f"epsilon {self.epsilon:g}, eigenvalues {low:.3g} .. {high:.3g}")

    def rows(self) -> tuple[list[str], list[list[str]]]:
        return ARRAY_HEADERS, [array_row("mean image", self.mean), array_row("eigenvalues", self.eigenvalues),
                               array_row("matrix W", self.matrix)]

    @classmethod
    def from_record(cls, record: dict[str, Any], arrays: dict[str, np.ndarray]) -> Whitening:
        return cls(mean=np.asarray(arrays["mean"], np.float64), matrix=np.asarray(arrays["matrix"], np.float32),
                   eigenvalues=np.asarray(arrays["eigenvalues"], np.float64), epsilon=float(record["epsilon"]))


def check_zca_size(shape: tuple[int, int, int]) -> None:
    """One line when images of ``shape`` (C, H, W) are too large to whiten."""
    C, H, W = shape
    D = C * H * W
    if D > MAX_DIMS:
        raise CnnlabError(f"data.normalize: zca on {C}x{H}x{W} images needs a {D}x{D} covariance "
                          f"({D * D * 8 / 1e9:.1f} GB) and its eigendecomposition; whiten at most {MAX_DIMS} "
                          "values per image (set a smaller data.image_size) or choose channel or pixel")


def image_mean(images: np.ndarray, rows: int) -> np.ndarray:
    """The mean of uint8 images (N, D) in [0, 1] units, float64 (D,), summed ``rows`` at a time."""
    total = np.zeros(images.shape[1])
    for start in range(0, len(images), rows):
        total += images[start:start + rows].sum(axis=0, dtype=np.float64)
    return total / (255.0 * len(images))


def covariance(images: np.ndarray, mean: np.ndarray, rows: int) -> np.ndarray:
    """Sigma = X^T X / N of the centred images, float64 (D, D): uint8 images (N, D), chunks of ``rows``."""
    N, D = images.shape
    sigma = np.zeros((D, D))
    for start in range(0, N, rows):
        x = images[start:start + rows].astype(np.float64) / 255.0 - mean  # (rows, D), centred
        sigma += x.T @ x
    return sigma / N


def fit_zca(images: np.ndarray, epsilon: float, chunk: int | None = None) -> Whitening:
    """ZCA whitening of uint8 training images (N, C, H, W) with ``epsilon`` added to the eigenvalues."""
    N, C, H, W = images.shape
    check_zca_size((C, H, W))
    if N < 2:
        raise CnnlabError(f"data.normalize: zca needs at least 2 training images to fit a covariance, got {N}")
    flat = images.reshape(N, -1)  # (N, D) uint8, a view
    D = flat.shape[1]
    rows = chunk or max(1, CHUNK_VALUES // D)
    mean = image_mean(flat, rows)  # (D,)
    eigenvalues, U = np.linalg.eigh(covariance(flat, mean, rows))  # ascending, U's columns the eigenvectors
    eigenvalues = np.clip(eigenvalues, 0.0, None)  # round-off leaves the null space slightly negative
    matrix = (U / np.sqrt(eigenvalues + epsilon)) @ U.T  # U diag(1 / sqrt(l + eps)) U^T, (D, D)
    return Whitening(mean=mean.reshape(C, H, W), matrix=matrix.astype(np.float32), eigenvalues=eigenvalues,
                     epsilon=float(epsilon))
