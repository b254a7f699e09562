"""An exponential moving average of the weights, evaluated in place of the trained weights.

The CIFAR-10 speed records (airbench's lookahead, timm's ``ModelEmaV3``) evaluate an average of
the recent weights rather than the last step's: the average sits nearer the bottom of the
valley that SGD bounces across, so it validates higher for free. ``Ema`` wraps torch's own
``AveragedModel``: every ``every`` steps, ``avg = d * avg + (1 - d) * w`` for each parameter and
(``use_buffers``) each batch-norm statistic too, so the averaged model is whole. Its first
update copies the weights. ``d`` is ``decay``, or with ``warmup`` (TensorFlow's
``ExponentialMovingAverage`` with ``num_updates``)
``min(decay, (1 + n) / (10 + n))`` at the n-th update, so the first updates follow the
quickly moving weights instead of dragging the random start along.

With ``train.ema`` on, validation, the best checkpoint and the test evaluate the average; the
checkpoint's weights are the average (what ``restore_model``, eval and export read) and its
trainer state holds the trained weights, so a resume continues both exactly.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


class Ema:
    """The weight average of ``model``, updated every ``every`` training steps with ``decay``."""

    def __init__(self, model: nn.Module, *, decay: float, every: int = 1, warmup: bool = False) -> None:
        self.decay, self.every, self.warmup = decay, every, warmup
        self.averaged = AveragedModel(model, multi_avg_fn=self.lerp, use_buffers=True)
        self.steps = 0

    def rate(self, n: int) -> float:
        """The decay of the n-th update after the first (which copies)."""
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def lerp(self, averages: list[torch.Tensor], weights: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        """torch's ``get_ema_multi_avg_fn`` update, with this update's decay; AveragedModel calls it
        per device and dtype, so integer buffers (a batch count) come alone and are copied."""
        if not averages[0].is_floating_point():
            torch._foreach_copy_(averages, weights)
            return
        torch._foreach_lerp_(averages, weights, 1 - self.rate(int(n_averaged)))

    @property
    def module(self) -> nn.Module:
        """The averaged network itself (same architecture and state-dict keys as the model)."""
        return self.averaged.module

    def update(self, model: nn.Module) -> None:
        self.steps += 1
        if self.steps % self.every == 0:
            self.averaged.update_parameters(model)

    def state_dict(self) -> dict:
        return {"steps": self.steps, "n_averaged": self.averaged.n_averaged.clone()}

    def load_state_dict(self, weights: dict[str, torch.Tensor], state: dict) -> None:
        self.module.load_state_dict(weights)
        self.steps = int(state["steps"])
        self.averaged.n_averaged.copy_(state["n_averaged"])
