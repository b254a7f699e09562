"""The monitored validation metric: best checkpoint and early stopping."""

from __future__ import annotations

import math
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.run.record import MetricsRow


class Monitor:
    """Tracks ``key`` (val_acc, val_loss, val_top5) across epochs; losses improve downwards."""

    def __init__(self, key: str, patience: int | None, min_delta: float) -> None:
        if key not in ("val_acc", "val_loss", "val_top5"):
            raise CnnlabError(f"train.monitor must be a validation metric (val_acc, val_loss, val_top5), got '{key}'")
        self.key, self.patience, self.min_delta = key, patience, min_delta
        self.sign = -1.0 if key.endswith("loss") else 1.0
        self.best: float | None = None
        self.best_epoch = 0
        self.stale = 0

    def update(self, row: MetricsRow) -> bool:
        """Record one epoch's row; True when it is the best so far (by more than ``min_delta``)."""
        value = getattr(row, self.key)
        if value is None or not math.isfinite(value):
            self.stale += 1
            return False
        if self.best is None or self.sign * (value - self.best) > self.min_delta:
            self.best, self.best_epoch, self.stale = value, row.epoch, 0
            return True
        self.stale += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.stale >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "stale": self.stale}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.stale = state["best"], state["best_epoch"], state["stale"]
