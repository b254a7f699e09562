"""Inference speed of a model as it will be served: latency at batch 1 and throughput at batch 256.

Both run under ``torch.inference_mode`` in the run's own precision and memory format, after a
warm-up (the first calls pick kernels and fill the allocator), so the figures sit beside the
run's training time in ablation tables.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from cnnlab.engine.precision import Precision

LATENCY_WARMUP = 10
LATENCY_RUNS = 200  # at most; stops earlier after LATENCY_SECONDS
LATENCY_SECONDS = 2.0
THROUGHPUT_BATCH = 256  # issue 10's batch
THROUGHPUT_WARMUP = 2
THROUGHPUT_SECONDS = 1.0  # per window
THROUGHPUT_REPEATS = 3  # windows; the best is kept (a shared machine's slower windows measure the others)


def _synced(precision: Precision) -> None:
    if precision.device.type == "cuda":
        torch.cuda.synchronize(precision.device)


def _batch(images: torch.Tensor, precision: Precision) -> torch.Tensor:
    layout = torch.channels_last if precision.channels_last else torch.contiguous_format
    x = torch.empty(images.shape, dtype=images.dtype, device=precision.device, memory_format=layout)
    return x.copy_(images)  # (B, C, H, W), exactly the layout's strides


@torch.inference_mode()
def latency(model: nn.Module, image: torch.Tensor, precision: Precision, *, runs: int = LATENCY_RUNS,
            seconds: float = LATENCY_SECONDS) -> dict:
    """Median and 95th-percentile milliseconds of one call on one image (1, C, H, W)."""
    x = _batch(image, precision)
    model.eval()
    with precision.autocast():
        for _ in range(LATENCY_WARMUP):
            model(x)
        _synced(precision)
        times: list[float] = []
        deadline = time.perf_counter() + seconds
        while len(times) < runs and (len(times) < 10 or time.perf_counter() < deadline):
            start = time.perf_counter()
            model(x)
            _synced(precision)
            times.append(time.perf_counter() - start)
    ms = np.array(times) * 1e3
    return {"batch": 1, "median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)),
            "runs": len(times)}


@torch.inference_mode()
def throughput(model: nn.Module, images: torch.Tensor, precision: Precision, *, seconds: float = THROUGHPUT_SECONDS,
               repeats: int = THROUGHPUT_REPEATS) -> dict:
    """Images per second at the batch of ``images`` (B, C, H, W): the best of ``repeats`` windows."""
    x = _batch(images, precision)
    model.eval()
    best = 0.0
    with precision.autocast():
        for _ in range(THROUGHPUT_WARMUP):
            model(x)
        for _ in range(repeats):
            _synced(precision)
            count, start = 0, time.perf_counter()
            while count < 2 or time.perf_counter() - start < seconds:
                model(x)
                count += 1
            _synced(precision)
            best = max(best, count * len(x) / (time.perf_counter() - start))
    return {"batch": len(x), "images_per_s": best}


def inference_timing(model: nn.Module, images: torch.Tensor, precision: Precision) -> dict:
    """Latency at batch 1 and throughput at batch 256 (images repeated when fewer), with the setting."""
    repeats = -(-THROUGHPUT_BATCH // len(images))
    batch = images.repeat(repeats, 1, 1, 1)[:THROUGHPUT_BATCH]  # (256, C, H, W)
    return {"setting": precision.label, "device": str(precision.device),
            "threads": torch.get_num_threads() if precision.device.type == "cpu" else None,
            "latency": latency(model, images[:1], precision), "throughput": throughput(model, batch, precision)}
