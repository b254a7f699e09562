"""How much of a training step the data pipeline costs (``cnnlab bench pipeline``).

Same process, same model, same batches: (a) forward + backward + update on batches made
beforehand, (b) the full step, where the DeviceLoader gathers, converts, augments and
normalizes each batch. Overhead = b / a - 1 (the issue asks <= 5% for convnet at batch 256).
It also times the loader alone against torch's DataLoader with torchvision's per-sample
transforms, the usual pipeline (batched ops are what make (b) cheap).
"""

from __future__ import annotations

import time
from statistics import median

import numpy as np
import torch

from cnnlab.data import load_dataset
from cnnlab.data.augment import build_augmentations
from cnnlab.data.loader import DeviceLoader
from cnnlab.data.normalize import fit_channel_stats
from cnnlab.engine.losses import build_loss
from cnnlab.engine.loop import train_one_epoch
from cnnlab.engine.precision import resolve_precision
from cnnlab.models import build_model

CIFAR_AUGMENT = [{"name": "random_crop", "padding": 4}, {"name": "flip_lr"}]  # ECE 661 lab 2


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _epoch_seconds(model, batches, loss, optimizer, precision) -> float:
    result = train_one_epoch(model, batches, loss, optimizer, None, precision, num_classes=10)
    return result.seconds


def step_overhead(model_name: str, batch_size: int, n_batches: int, rounds: int, precision_name: str) -> dict:
    """Medians over ``rounds`` of (a) the step on pre-made batches and (b) the full step, per batch.

    Returns model, precision, batch, threads, step_ms (a), full_ms (b), overhead (b / a - 1)
    and loader_images_per_s (the DeviceLoader alone).
    """
    precision = resolve_precision("auto", precision_name, "auto")
    data = load_dataset("synthetic", shape=(3, 32, 32), train_size=batch_size * n_batches, test_size=1)
    stats = fit_channel_stats(data.train_images)
    loader = DeviceLoader(data.train_images, data.train_labels, batch_size=batch_size, stats=stats,
                          device=precision.device, augment=build_augmentations(CIFAR_AUGMENT), shuffle=True,
                          generator=torch.Generator(precision.device).manual_seed(0),
                          channels_last=precision.channels_last)
    premade = list(loader)  # the same kind of batches, made before the clock starts
    torch.manual_seed(0)
    layout = torch.channels_last if precision.channels_last else torch.preserve_format
    model = build_model(model_name).to(precision.device, memory_format=layout)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss = build_loss("cross_entropy", 10)
    _epoch_seconds(model, premade[:3], loss, optimizer, precision)  # warm up kernels and allocator
    alone, full, loading = [], [], []
    for _ in range(rounds):
        alone.append(_epoch_seconds(model, premade, loss, optimizer, precision))
        full.append(_epoch_seconds(model, loader, loss, optimizer, precision))
        start = time.perf_counter()
        for _batch in loader:
            pass
        sync(precision.device)
        loading.append(time.perf_counter() - start)
    return {"model": model_name, "precision": precision.name, "batch": batch_size, "threads": torch.get_num_threads(),
            "step_ms": median(alone) / n_batches * 1e3,
            "full_ms": median(full) / n_batches * 1e3, "overhead": median(full) / median(alone) - 1,
            "loader_images_per_s": batch_size * n_batches / median(loading)}


def torchvision_loader_rate(batch_size: int, n_images: int) -> float:
    """images/s of torch's DataLoader with torchvision's per-sample crop, flip and normalize."""
    from torchvision.transforms import v2

    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (n_images, 3, 32, 32), dtype=np.uint8))
    transform = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True),
                            v2.Normalize([0.5] * 3, [0.25] * 3)])

    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return n_images

        def __getitem__(self, i):
            return transform(images[i]), 0

    loader = torch.utils.data.DataLoader(Images(), batch_size=batch_size, shuffle=True, num_workers=0)
    start = time.perf_counter()
    for _ in loader:
        pass
    return n_images / (time.perf_counter() - start)
