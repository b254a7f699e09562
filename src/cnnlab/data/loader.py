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
from cnnlab.data.normalize_base import Normalization


class DeviceLoader:
    """Iterate (images, labels) batches from uint8 images held on ``device``.

    images: (N, C, H, W) uint8, labels: (N,) int64. Yields float32 (B, C, H, W), normalized
    with ``stats`` (any scheme of ``cnnlab.data.normalize``), augmented by ``augment`` when given,
    and labels (B,).
    """

    def __init__(
        self,
        images: np.ndarray | torch.Tensor,
        labels: np.ndarray | torch.Tensor,
        *,
        batch_size: int,
        stats: Normalization,
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
        # (x / 255 - mean) / std == (x - 255 mean) * (1 / (255 std)): one subtract, one multiply
        # (per channel or per pixel); ZCA then one matmul
        self.normalize = stats.on_device(self.device)

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
        """uint8 (B, C, H, W) -> augmented (still uint8) -> float32 normalized, in the requested layout."""
        for op in self.augment:
            batch = op(batch, self.generator)
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        x = torch.empty(batch.shape, dtype=torch.float32, device=self.device, memory_format=layout)
        x.copy_(batch)  # conversion and layout change in one pass
        return self.normalize(x).contiguous(memory_format=layout)  # in place; ZCA's matmul gives NCHW back
