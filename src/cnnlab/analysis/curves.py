"""What the learning curves say: the epoch of lowest validation loss, and overfitting after it.

Overfitting is flagged as the practical work reads its curves: after the epoch of lowest
validation loss, validation loss rises (to the last epoch) while training loss still falls, for
at least ``MIN_EPOCHS_AFTER`` epochs. One rising epoch is noise, not a trend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cnnlab.run.record import MetricsRow

MIN_EPOCHS_AFTER = 2


@dataclass(frozen=True)
class CurveReading:
    lowest_val_loss_epoch: int | None  # None without validation rows
    lowest_val_loss: float | None
    overfitting: bool
    note: str  # one sentence for the report


def read_curves(rows: Sequence[MetricsRow]) -> CurveReading:
    """Find the lowest validation loss and whether the curves overfit after it."""
    points = [r for r in rows if r.val_loss is not None]
    if not points:
        return CurveReading(None, None, False, "no validation loss was recorded")
    best = min(points, key=lambda r: r.val_loss)
    last = points[-1]
    after = [r for r in points if r.epoch > best.epoch]
    rising = len(after) >= MIN_EPOCHS_AFTER and last.val_loss > best.val_loss
    falling = last.train_loss < best.train_loss
    if rising and falling:
        note = (f"overfitting: after epoch {best.epoch} validation loss rose from {best.val_loss:.4f} to "
                f"{last.val_loss:.4f} while training loss fell from {best.train_loss:.4f} to {last.train_loss:.4f}")
    else:
        note = f"lowest validation loss {best.val_loss:.4f} at epoch {best.epoch}; no sign of overfitting after it"
    return CurveReading(best.epoch, best.val_loss, rising and falling, note)
