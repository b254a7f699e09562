"""Optimizers by name: thin builders over torch.optim with explicit keyword arguments.

The builder's signature is the list of keys a recipe may set for it, so
``optim.name=adam optim.nesterov=true`` is refused with the valid keys named.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from cnnlab.registry import Registry, check_options

OPTIMIZERS = Registry("optimizer")


@OPTIMIZERS.register()
def sgd(params, *, lr: float, weight_decay: float = 0.0, momentum: float = 0.0, nesterov: bool = False):
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)


@OPTIMIZERS.register()
def adam(params, *, lr: float, weight_decay: float = 0.0, betas=(0.9, 0.999), eps: float = 1e-8):
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)


@OPTIMIZERS.register()
def adamw(params, *, lr: float, weight_decay: float = 0.01, betas=(0.9, 0.999), eps: float = 1e-8):
    return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)


@OPTIMIZERS.register()
def rmsprop(params, *, lr: float, weight_decay: float = 0.0, alpha: float = 0.99, eps: float = 1e-8,
            momentum: float = 0.0):
    return torch.optim.RMSprop(params, lr=lr, alpha=alpha, eps=eps, momentum=momentum, weight_decay=weight_decay)


@OPTIMIZERS.register()
def adagrad(params, *, lr: float, weight_decay: float = 0.0, eps: float = 1e-10):
    return torch.optim.Adagrad(params, lr=lr, eps=eps, weight_decay=weight_decay)


def build_optimizer(name: str, params: Iterable[nn.Parameter], **options: Any) -> torch.optim.Optimizer:
    """Build optimizer ``name`` over ``params``; ``options`` left at None take its defaults."""
    builder = OPTIMIZERS.get(name)
    options = {k: v for k, v in options.items() if v is not None}
    check_options(f"optimizer '{name}'", builder, options, exclude=["params"])
    return builder(params, **options)


def l1_penalty(params: list[nn.Parameter]) -> torch.Tensor:
    """sum(|w|) over ``params`` (the labs' L1 regularisation, ECE 661 question 6)."""
    return torch.stack([p.abs().sum() for p in params]).sum()
