"""Learning-rate schedules, stepped once per batch, with optional linear warmup.

Each schedule is a factor of the base lr as a function of the step, wrapped in ``LambdaLR``,
so its state is one integer and resumes exactly. ``step`` and ``exponential`` change the lr at
epoch boundaries, as torch's StepLR/ExponentialLR stepped per epoch do; ``cosine`` and
``onecycle`` move every batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from cnnlab.registry import Registry, check_options

Factor = Callable[[int], float]
SCHEDULES: Registry[Callable[..., Factor]] = Registry("schedule")


@SCHEDULES.register()
def constant(*, total_steps: int, steps_per_epoch: int) -> Factor:
    return lambda step: 1.0


@SCHEDULES.register()
def step(*, total_steps: int, steps_per_epoch: int, step_size: int = 10, gamma: float = 0.1) -> Factor:
    return lambda s: gamma ** ((s // steps_per_epoch) // step_size)


@SCHEDULES.register()
def exponential(*, total_steps: int, steps_per_epoch: int, gamma: float = 0.95) -> Factor:
    """lr * gamma^epoch (cs231n's ``lr_decay`` per epoch; practical work 27 uses 0.95)."""
    return lambda s: gamma ** (s // steps_per_epoch)


@SCHEDULES.register()
def cosine(*, total_steps: int, steps_per_epoch: int, min_lr: float = 0.0) -> Factor:
    """Cosine annealing to ``min_lr`` x lr over the run (Loshchilov & Hutter 2017, no restarts)."""
    return lambda s: min_lr + (1 - min_lr) * 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps))


@SCHEDULES.register()
def onecycle(*, total_steps: int, steps_per_epoch: int, pct_start: float = 0.25, div_factor: float = 25.0,
             min_lr: float = 0.0) -> Factor:
    """Smith & Topin 2019: cosine rise from lr/div_factor to lr over ``pct_start``, then cosine
    fall to ``min_lr`` x lr. (torch's OneCycleLR also cycles momentum; this one leaves it.)"""
    rise = max(1, round(pct_start * total_steps))
    start = 1.0 / div_factor

    def factor(s: int) -> float:
        if s < rise:
            return start + (1 - start) * 0.5 * (1 - math.cos(math.pi * s / rise))
        t = min(1.0, (s - rise) / max(1, total_steps - rise))
        return min_lr + (1 - min_lr) * 0.5 * (1 + math.cos(math.pi * t))

    return factor


def with_warmup(factor: Factor, warmup_steps: int, start: float) -> Factor:
    """Linear warmup from ``start`` x lr to the schedule's value over ``warmup_steps``."""
    if warmup_steps <= 0:
        return factor
    return lambda s: factor(s) * (start + (1 - start) * min(1.0, s / warmup_steps))


def schedule_factor(name: str, *, total_steps: int, steps_per_epoch: int, warmup_epochs: float = 0.0,
                    warmup_start: float = 0.0, **options) -> Factor:
    """The lr factor of schedule ``name`` over ``total_steps`` steps; ``options`` go to the
    schedule (those left at None take its defaults)."""
    builder = SCHEDULES.get(name)
    options = {k: v for k, v in options.items() if v is not None}
    check_options(f"schedule '{name}'", builder, options, exclude=["total_steps", "steps_per_epoch"])
    factor = builder(total_steps=max(1, total_steps), steps_per_epoch=steps_per_epoch, **options)
    return with_warmup(factor, round(warmup_epochs * steps_per_epoch), warmup_start)


def build_schedule(name: str, optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int,
                   **options) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-batch scheduler for ``epochs`` x ``steps_per_epoch`` steps (see ``schedule_factor``)."""
    factor = schedule_factor(name, total_steps=epochs * steps_per_epoch, steps_per_epoch=steps_per_epoch, **options)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def retarget(scheduler: torch.optim.lr_scheduler.LambdaLR, factor: Factor) -> None:
    """Give ``scheduler`` a new factor (a time budget re-planned the steps) from its current step on.

    The lr of the next step is set at once, so a run resumed from a checkpoint saved after the
    re-planning trains exactly as the run that re-planned.
    """
    scheduler.lr_lambdas = [factor] * len(scheduler.optimizer.param_groups)
    for group, base in zip(scheduler.optimizer.param_groups, scheduler.base_lrs):
        group["lr"] = base * factor(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]
