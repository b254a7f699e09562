"""Device-resident batches: a whole split lives as one uint8 tensor on the training device.

Each batch is gathered by index, converted to float, augmented and normalized as one tensor,
so the training loop runs no per-sample Python and copies nothing from host memory after the
first transfer (on a GPU the 60k Fashion-MNIST images take 47 MB).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from cnnlab.data.augment import Augmentation
from cnnlab.data.normalize import ChannelStats


class DeviceLoader:
    """Iterate (images, labels) batches from uint8 images held on ``device``.

    images: (N, C, H, W) uint8, labels: (N,) int64. Yields float32 (B, C, H, W), normalized
    with ``stats``, augmented by ``augment`` when given, and labels (B,).
    """

    def __init__(
        self,
        images: np.ndarray | torch.Tensor,
        labels: np.ndarray | torch.Tensor,
        *,
        batch_size: int,
        stats: ChannelStats,
        device: torch.device | str = "cpu",
        augment: Sequence[Augmentation] = (),
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        channels_last: bool = False,
    ) -> None:
        self.device = torch.device(device)
        self.images = torch.as_tensor(images).to(self.device)  # (N, C, H, W) uint8
        self.labels = torch.as_tensor(labels, dtype=torch.int64).to(self.device)  # (N,)
        self.batch_size = batch_size
        self.augment = list(augment)
        self.shuffle = shuffle
        self.generator = generator
        if (shuffle or self.augment) and generator is None:
            raise ValueError("a shuffling or augmenting DeviceLoader needs a seeded generator")
        self.channels_last = channels_last
        C = self.images.shape[1]
        self.mean = torch.tensor(stats.mean, device=self.device).view(1, C, 1, 1)
        self.inv_std = 1.0 / torch.tensor(stats.std, device=self.device).view(1, C, 1, 1)

    def __len__(self) -> int:
        n, b = len(self.labels), self.batch_size
        batches = -(-n // b)
        # A final batch of one image cannot train batch norm; it is dropped (reshuffled next epoch).
        return batches - 1 if self.shuffle and n % b == 1 and n > 1 else batches

    @property
    def num_images(self) -> int:
        return len(self.labels)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator, device=self.device) if self.shuffle else None
        for i in range(len(self)):
            if order is None:
                x = self.images[i * self.batch_size : (i + 1) * self.batch_size]
                y = self.labels[i * self.batch_size : (i + 1) * self.batch_size]
            else:
                idx = order[i * self.batch_size : (i + 1) * self.batch_size]
                x, y = self.images[idx], self.labels[idx]  # (B, C, H, W) uint8, (B,)
            yield self.transform(x), y

    def transform(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> float32, augmented, normalized, in the requested memory format."""
        x = batch.to(torch.float32).mul_(1.0 / 255)
        for op in self.augment:
            x = op(x, self.generator)
        x = (x - self.mean).mul_(self.inv_std)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x
