"""Losses by name, with how many logits each needs and its value at an untrained start.

CM2003 lab 2 (task 6f) compares binary cross-entropy and hinge on one output logit; ECE 661 and
the practical work check the first loss against ln(C) (2.30 for 10 classes). ``Loss.initial``
is that expected value: the loss of all-zero logits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError
from cnnlab.registry import Registry, check_options


@dataclass(frozen=True)
class Loss:
    """A loss over logits (N, num_outputs) and integer class targets (N,)."""

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    num_outputs: int  # logits the model must produce: num_classes, or 1 for binary losses
    initial: float  # the loss at all-zero logits

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.fn(logits.float(), targets)

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-class scores (N, K) for accuracy and confusion: one logit z becomes [0, z]."""
        if self.num_outputs == 1:
            return torch.cat([torch.zeros_like(logits), logits], dim=1)
        return logits


LOSSES: Registry[Callable[..., Loss]] = Registry("loss")


def _need_binary(name: str, num_classes: int) -> None:
    if num_classes != 2:
        raise CnnlabError(f"loss '{name}' is for two classes on one logit, but the data has {num_classes}; "
                          "pick two labels with data.classes=[a,b] or use loss.name=cross_entropy")


@LOSSES.register()
def cross_entropy(num_classes: int, *, label_smoothing: float = 0.0) -> Loss:
    def fn(logits, targets):
        return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)

    return Loss("cross_entropy", fn, num_classes, math.log(num_classes))


@LOSSES.register()
def bce(num_classes: int) -> Loss:
    """Binary cross-entropy on one logit (sigmoid inside, numerically stable)."""
    _need_binary("bce", num_classes)

    def fn(logits, targets):
        return F.binary_cross_entropy_with_logits(logits[:, 0], targets.float())

    return Loss("bce", fn, 1, math.log(2))


@LOSSES.register()
def hinge(num_classes: int, *, margin: float = 1.0) -> Loss:
    """Two classes: mean(max(0, margin - t*z)) with t = +-1 on one logit (CM2003's Keras 'hinge').
    More classes: the multiclass SVM loss of Crammer & Singer as torch's ``multi_margin_loss``."""
    if num_classes == 2:
        def fn(logits, targets):
            signs = targets.float() * 2 - 1  # {0, 1} -> {-1, +1}
            return F.relu(margin - signs * logits[:, 0]).mean()

        return Loss("hinge", fn, 1, margin)

    def fn(logits, targets):
        return F.multi_margin_loss(logits, targets, margin=margin)

    return Loss("hinge", fn, num_classes, margin * (num_classes - 1) / num_classes)


def build_loss(name: str, num_classes: int, **options) -> Loss:
    builder = LOSSES.get(name)
    options = {k: v for k, v in options.items() if v is not None}
    check_options(f"loss '{name}'", builder, options, exclude=["num_classes"])
    return builder(num_classes, **options)
