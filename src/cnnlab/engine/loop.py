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

from cnnlab.data.normalize import Normalization
from cnnlab.engine.ema import Ema
from cnnlab.engine.finetune import set_train_mode
from cnnlab.engine.losses import Loss
from cnnlab.engine.metrics import AverageMeter, confusion_update, topk_correct
from cnnlab.engine.optim import l1_penalty
from cnnlab.engine.precision import Precision
from cnnlab.errors import CnnlabError


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


class Tally:
    """Loss, top-k hits and optionally the confusion matrix of one pass, summed on the device."""

    def __init__(self, num_classes: int, device: torch.device, *, confusion: bool = False) -> None:
        self.ks = (1, 5) if num_classes > 5 else (1,)  # top-5 says nothing with 5 classes or fewer
        self.loss = AverageMeter()
        self.hits = [AverageMeter() for _ in self.ks]
        self.confusion = (torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
                          if confusion else None)

    def add(self, loss: torch.Tensor, scores: torch.Tensor, targets: torch.Tensor) -> None:
        n = targets.shape[0]
        self.loss.update(loss, n)
        for meter, hits in zip(self.hits, topk_correct(scores, targets, self.ks)):
            meter.update(hits / n, n)
        if self.confusion is not None:
            self.confusion = confusion_update(self.confusion, scores.argmax(dim=1), targets)

    def result(self, seconds: float, first_loss: float | None = None) -> EpochResult:
        return EpochResult(self.loss.avg, self.hits[0].avg, self.hits[1].avg if len(self.ks) > 1 else None,
                           self.loss.count, seconds, first_loss,
                           None if self.confusion is None else self.confusion.cpu())


class NonFiniteLoss(Exception):
    """Training met a non-finite loss; raised before that batch's update is applied."""

    def __init__(self, step: int, loss: float, last_finite_loss: float | None, lr: float) -> None:
        super().__init__(f"non-finite loss {loss} at step {step}")
        self.step, self.loss, self.last_finite_loss, self.lr = step, loss, last_finite_loss, lr


class FiniteCheck:
    """Stops an epoch at the first non-finite loss.

    On the CPU every loss is looked at before its update (free: the CPU has computed it
    already). On a GPU that would wait for the device every step, so losses are checked in
    windows of ``window`` steps: a NaN found there stops the epoch a few updates late, which
    is harmless because nothing of an unfinished epoch is ever saved.
    """

    def __init__(self, device: torch.device, window: int = 16,
                 reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.window = 1 if device.type == "cpu" else window
        self.pending: list[tuple[int, torch.Tensor, float]] = []
        self.last_finite: float | None = None
        self.reduce = reduce  # under torchrun: the mean over the ranks, so every rank stops at the same step

    def __call__(self, step: int, loss: torch.Tensor, lr: float) -> None:
        self.pending.append((step, loss.detach(), lr))
        if len(self.pending) >= self.window:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        values = torch.stack([p[1] for p in self.pending]).float()
        if self.reduce is not None:
            values = self.reduce(values)
        values = values.cpu().tolist()  # one wait per window
        for (at, _, at_lr), value in zip(self.pending, values):
            if not math.isfinite(value):
                self.pending = []
                raise NonFiniteLoss(at, value, self.last_finite, at_lr)
            self.last_finite = value
        self.pending = []


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
    check: FiniteCheck | None = None,
    max_steps: int | None = None,
    ema: Ema | None = None,
) -> EpochResult:
    """Train over ``batches`` once (or its first ``max_steps`` batches: a time budget's partial
    last epoch); the scheduler steps every batch, and ``ema`` (a weight average) is updated after
    every optimizer step. Metrics are over the steps trained.

    Raises ``NonFiniteLoss`` at the first non-finite loss (``check`` keeps the last finite one
    across epochs), so a diverging run stops before it trains on NaN.
    """
    set_train_mode(model)
    check = check or FiniteCheck(precision.device)
    l1_params = [p for p in model.parameters() if p.requires_grad and p.dim() > 1] if l1 else []
    tally = Tally(num_classes, precision.device)
    first_loss = None
    start = time.perf_counter()
    for step, (x, y) in enumerate(batches, 1):
        with precision.autocast():
            logits = model(x)
        loss = loss_fn(logits, y)
        check(step, loss, optimizer.param_groups[0]["lr"])
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
        if ema is not None:
            ema.update(model)
        tally.add(loss.detach(), loss_fn.scores(logits.detach()), y)
        if on_batch is not None:
            on_batch()
        if max_steps is not None and step >= max_steps:
            break
    check.flush()
    if precision.device.type == "cuda":
        torch.cuda.synchronize(precision.device)
    return tally.result(time.perf_counter() - start, first_loss)


def check_tta(tta: str, normalization: Normalization) -> None:
    """``tta="flip"`` mirrors normalized images: the same as normalizing mirrored pixels only when the
    normalization is per channel (a mean image or a whitening matrix is not mirror-symmetric)."""
    if tta == "flip" and normalization.image_shape is not None:
        raise CnnlabError(f"tta flip mirrors normalized images, which equals mirroring the pixels only for per-channel "
                          f"normalization, and this data.normalize is {normalization.scheme}: use tta none, or a "
                          "per-channel scheme (channel, imagenet, fixed, none)")


def eval_logits(model: nn.Module, x: torch.Tensor, precision: Precision, tta: str = "none") -> torch.Tensor:
    """(B, K) logits of a batch in ``precision``; with ``tta="flip"`` the mean of the image's and
    its left-right mirror's."""
    with precision.autocast():
        logits = model(x)  # (B, K)
        if tta == "flip":
            logits = (logits + model(x.flip(3))) / 2
    return logits


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: Loss,
    precision: Precision,
    *,
    num_classes: int,
    tta: str = "none",
) -> EpochResult:
    """Loss, top-1/top-5 and the confusion matrix over ``batches`` in eval mode; with
    ``tta="flip"`` the logits are the mean of the image's and its left-right mirror's."""
    model.eval()
    tally = Tally(num_classes, precision.device, confusion=True)
    start = time.perf_counter()
    for x, y in batches:
        logits = eval_logits(model, x, precision, tta)
        tally.add(loss_fn(logits, y), loss_fn.scores(logits), y)
    return tally.result(time.perf_counter() - start)
