"""A time budget for the epochs: the schedule is laid out over the steps that fit in it.

With ``train.time_budget_s`` the run does not train a fixed number of epochs. Before epoch 1
the step time measured on the real model and batch (``cnnlab.engine.autotune``) says how many
steps fit; the one-cycle (or cosine, ...) schedule is laid out over those, so the lr has
annealed when time is up, as a fixed-length schedule would have. After epoch 1 the plan is
made once more from what that epoch really took (training steps, then validation and the
rest), and the schedule is stretched or shrunk to the new count. After each later epoch the
plan is checked against the epochs so far: when it would run into the last ``GUARD`` of the
budget (a shared machine slowed down), it is made again from their mean step and validation
times, and the schedule shrinks to fit. The last epoch may be partial: it ends at the planned
step, then validates and commits as any epoch.

The plan travels in every checkpoint, so a resumed run finishes the same plan exactly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from cnnlab.errors import CnnlabError

MARGIN = 0.03  # of the budget, kept back: epoch times vary by a few percent on a shared machine
GUARD = MARGIN / 2  # a later epoch re-plans only when the plan would run into the last 1.5% of the budget
EVAL_COST = 1 / 3  # an evaluation image costs about a third of a training image (forward only)


def steps_that_fit(seconds: float, *, step_s: float, overhead_s: float, steps_per_epoch: int) -> int:
    """Training steps that fit in ``seconds`` when each epoch of ``steps_per_epoch`` steps ends
    with ``overhead_s`` of validation; a last, partial epoch counts if it has room for a step."""
    epoch_s = steps_per_epoch * step_s + overhead_s
    full = max(0, int(seconds // epoch_s))
    rest = seconds - full * epoch_s - overhead_s
    partial = min(steps_per_epoch - 1, int(rest // step_s)) if rest >= step_s else 0
    return full * steps_per_epoch + partial


@dataclass
class Plan:
    """How many steps the budget holds, and the estimates behind each planning."""

    budget_s: float
    steps_per_epoch: int
    max_epochs: int  # train.epochs: the most the plan may hold, however fast the machine
    total_steps: int
    history: list[dict[str, float]] = field(default_factory=list)  # after_epoch, step_s, overhead_s, total_steps

    @property
    def epochs(self) -> int:
        return math.ceil(self.total_steps / self.steps_per_epoch)

    @property
    def replanned(self) -> bool:
        return len(self.history) > 1

    def steps_in(self, epoch: int) -> int:
        """Training steps of ``epoch`` (1-based): all of them but in a partial last epoch."""
        return max(0, min(self.steps_per_epoch, self.total_steps - (epoch - 1) * self.steps_per_epoch))

    def steps_through(self, epochs: int) -> int:
        return sum(self.steps_in(e) for e in range(1, epochs + 1))

    def _plan(self, after_epoch: int, seconds: float, step_s: float, overhead_s: float, done: int) -> None:
        more = steps_that_fit(seconds, step_s=step_s, overhead_s=overhead_s, steps_per_epoch=self.steps_per_epoch)
        self.total_steps = max(done, min(self.max_epochs * self.steps_per_epoch, done + more))
        self.history.append({"after_epoch": after_epoch, "step_s": step_s, "overhead_s": overhead_s,
                             "total_steps": self.total_steps})

    def replan(self, *, elapsed_s: float, train_s: float, wall_s: float, steps_done: int,
               epochs_done: int = 1) -> None:
        """Plan again from what the first ``epochs_done`` epochs took: ``train_s`` for their
        ``steps_done`` steps, and ``wall_s`` with validation; ``elapsed_s`` of the budget are gone."""
        left = self.budget_s * (1 - MARGIN) - elapsed_s
        self._plan(epochs_done, left, train_s / steps_done, max(0.0, wall_s - train_s) / epochs_done, steps_done)

    def overruns(self, *, elapsed_s: float, train_s: float, wall_s: float, epochs_done: int) -> bool:
        """Whether the rest of the plan, at the mean step and validation times of the first
        ``epochs_done`` epochs (``train_s`` of steps, ``wall_s`` in all), would end in the last
        ``GUARD`` of the budget or past it."""
        steps_done = self.steps_through(epochs_done)
        step_s, overhead_s = train_s / steps_done, max(0.0, wall_s - train_s) / epochs_done
        rest = (self.total_steps - steps_done) * step_s + (self.epochs - epochs_done) * overhead_s
        return elapsed_s + rest > self.budget_s * (1 - GUARD)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(**data)


def first_plan(budget_s: float, *, step_s: float, steps_per_epoch: int, batch: int, val_images: int,
               max_epochs: int) -> Plan:
    """The plan before epoch 1, from the measured seconds per training step.

    Validation is estimated at a third of a training step per image. A budget that cannot hold
    one epoch is refused in one line that says how long an epoch takes here.
    """
    overhead_s = val_images / batch * step_s * EVAL_COST
    epoch_s = steps_per_epoch * step_s + overhead_s
    if epoch_s > budget_s * (1 - MARGIN):
        raise CnnlabError(f"train.time_budget_s={budget_s:g} is too short for one epoch: here one epoch "
                          f"({steps_per_epoch} steps of {step_s:.3g}s, then validation) takes about {epoch_s:.0f}s; "
                          f"set train.time_budget_s to at least {math.ceil(epoch_s / (1 - MARGIN))}")
    plan = Plan(budget_s, steps_per_epoch, max_epochs, total_steps=0)
    plan._plan(0, budget_s * (1 - MARGIN), step_s, overhead_s, 0)
    return plan
