"""An exponential moving average of the weights, evaluated in place of the trained weights.

The CIFAR-10 speed records (airbench's lookahead, timm's ``ModelEmaV3``) evaluate an average of
the recent weights rather than the last step's: the average sits nearer the bottom of the
valley that SGD bounces across, so it validates higher for free. ``Ema`` wraps torch's own
``AveragedModel`` with ``get_ema_multi_avg_fn``: every ``every`` steps,
``avg = decay * avg + (1 - decay) * w`` for each parameter and (``use_buffers``) each batch-norm
statistic too, so the averaged model is whole. Its first update copies the weights.

With ``train.ema`` on, validation, the best checkpoint and the test evaluate the average; the
checkpoint's weights are the average (what ``restore_model``, eval and export read) and its
trainer state holds the trained weights, so a resume continues both exactly.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class Ema:
    """The weight average of ``model``, updated every ``every`` training steps with ``decay``."""

    def __init__(self, model: nn.Module, *, decay: float, every: int = 1) -> None:
        self.decay, self.every = decay, every
        self.averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self.steps = 0

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
