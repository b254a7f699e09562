"""Per-channel standardization, fit on the training split only (CS 6476 part 1, practical work 20).

The statistics come from one vectorized streaming pass: each chunk contributes its count,
mean and sum of squared deviations per channel, and chunks merge with Chan et al.'s parallel
update, which stays exact where the naive E[x^2] - E[x]^2 loses precision. This is what
scikit-learn's ``StandardScaler.partial_fit`` does, without a Python loop over images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel mean and std in [0, 1] pixel units."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict) -> "ChannelStats":
        return cls(tuple(float(m) for m in data["mean"]), tuple(float(s) for s in data["std"]))

    def normalize(self, images):
        """uint8 images (N, C, H, W), a torch tensor, as the loader feeds them: (x / 255 - mean) / std, float32."""
        x = images.float() / 255
        C = x.shape[1]
        return (x - x.new_tensor(self.mean).view(1, C, 1, 1)) / x.new_tensor(self.std).view(1, C, 1, 1)

    @classmethod
    def identity(cls, channels: int) -> "ChannelStats":
        return cls((0.0,) * channels, (1.0,) * channels)


def merge_moments(n_a, mean_a, m2_a, n_b, mean_b, m2_b):
    """Combine (count, mean, M2) of two disjoint parts (Chan, Golub & LeVeque 1979)."""
    n = n_a + n_b
    delta = mean_b - mean_a
    mean = mean_a + delta * (n_b / n)
    m2 = m2_a + m2_b + delta**2 * (n_a * n_b / n)
    return n, mean, m2


def fit_channel_stats(images: np.ndarray, chunk: int = 8192) -> ChannelStats:
    """Mean and (population) std per channel of uint8 images (N, C, H, W), as fractions of 255."""
    N, C = images.shape[:2]
    n, mean, m2 = 0, np.zeros(C), np.zeros(C)
    for start in range(0, N, chunk):
        x = images[start : start + chunk].astype(np.float64) / 255.0  # (n_b, C, H, W)
        x = x.transpose(1, 0, 2, 3).reshape(C, -1)  # (C, n_b*H*W)
        n_b = x.shape[1]
        mean_b = x.mean(axis=1)
        m2_b = ((x - mean_b[:, None]) ** 2).sum(axis=1)
        n, mean, m2 = merge_moments(n, mean, m2, n_b, mean_b, m2_b)
    std = np.sqrt(m2 / max(n, 1))
    std[std < 1e-8] = 1.0  # a constant channel: leave it centred, do not divide by (nearly) zero
    return ChannelStats(tuple(mean.tolist()), tuple(std.tolist()))
