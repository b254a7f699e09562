"""One epoch of training and one evaluation pass (torchvision references' split).

``train_one_epoch`` and ``evaluate`` take their pieces as explicit arguments and return plain
numbers, so sweeps, benchmarks and tests call them the same way ``fit`` does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from cnnlab.engine.finetune import set_train_mode
from cnnlab.engine.losses import Loss
from cnnlab.engine.metrics import AverageMeter, confusion_update, topk_correct
from cnnlab.engine.optim import l1_penalty
from cnnlab.engine.precision import Precision


@dataclass
class EpochResult:
    loss: float
    top1: float  # fraction correct
    top5: float | None  # None when there are 5 classes or fewer
    images: int
    seconds: float
    first_loss: float | None = None  # loss of the very first batch (training only)
    confusion: torch.Tensor | None = None  # (K, K) counts (evaluation only)

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("nan")


def _ks(num_classes: int) -> tuple[int, ...]:
    return (1, 5) if num_classes > 5 else (1,)


def train_one_epoch(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: Loss,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    precision: Precision,
    *,
    num_classes: int,
    l1: float = 0.0,
    scaler: torch.amp.GradScaler | None = None,
    on_batch: Callable[[], None] | None = None,
) -> EpochResult:
    """Train over ``batches`` once; scheduler steps every batch. Metrics are over the epoch."""
    set_train_mode(model)
    l1_params = [p for p in model.parameters() if p.requires_grad and p.dim() > 1] if l1 else []
    loss_meter, ks = AverageMeter(), _ks(num_classes)
    correct = [AverageMeter() for _ in ks]
    first_loss = None
    start = time.perf_counter()
    for x, y in batches:
        with precision.autocast():
            logits = model(x)
        loss = loss_fn(logits, y)
        if first_loss is None:
            first_loss = loss.item()
        total = loss + l1 * l1_penalty(l1_params) if l1 else loss
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(total).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            total.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        n = y.shape[0]
        loss_meter.update(loss, n)
        for meter, hits in zip(correct, topk_correct(loss_fn.scores(logits.detach()), y, ks)):
            meter.update(hits / n, n)
        if on_batch is not None:
            on_batch()
    if precision.device.type == "cuda":
        torch.cuda.synchronize(precision.device)
    seconds = time.perf_counter() - start
    return EpochResult(loss_meter.avg, correct[0].avg, correct[1].avg if len(ks) > 1 else None,
                       loss_meter.count, seconds, first_loss)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: Loss,
    precision: Precision,
    *,
    num_classes: int,
) -> EpochResult:
    """Loss, top-1/top-5 and the confusion matrix over ``batches`` in eval mode."""
    model.eval()
    loss_meter, ks = AverageMeter(), _ks(num_classes)
    correct = [AverageMeter() for _ in ks]
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=precision.device)
    start = time.perf_counter()
    for x, y in batches:
        with precision.autocast():
            logits = model(x)
        n = y.shape[0]
        loss_meter.update(loss_fn(logits, y), n)
        scores = loss_fn.scores(logits)
        for meter, hits in zip(correct, topk_correct(scores, y, ks)):
            meter.update(hits / n, n)
        confusion = confusion_update(confusion, scores.argmax(dim=1), y)
    seconds = time.perf_counter() - start
    return EpochResult(loss_meter.avg, correct[0].avg, correct[1].avg if len(ks) > 1 else None,
                       loss_meter.count, seconds, confusion=confusion.cpu())


def is_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
