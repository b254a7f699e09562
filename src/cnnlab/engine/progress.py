"""What a run prints: a rich progress bar on a terminal, one line per epoch otherwise."""

from __future__ import annotations

import sys
from typing import TextIO

from cnnlab.run.record import MetricsRow


def format_epoch(row: MetricsRow, epochs: int, improved: bool = False) -> str:
    """One line per epoch, e.g. ``epoch  3/20  train loss 0.41 acc 85.1%  val loss ...``; a ``*``
    marks a new best of the monitored metric (its checkpoint is kept)."""
    top5 = f" top5 {row.val_top5:.1%}" if row.val_top5 is not None else ""
    return (f"epoch {row.epoch:>{len(str(epochs))}}/{epochs}  "
            f"train loss {row.train_loss:.4f} acc {row.train_acc:.2%}  "
            f"val loss {row.val_loss:.4f} acc {row.val_acc:.2%}{top5}  "
            f"lr {row.lr:.3g}  {row.epoch_time:.1f}s  {row.images_per_s:,.0f} img/s{' *' if improved else ''}")


class Progress:
    """Reports a run's progress; ``live`` (a terminal) gets a per-batch bar."""

    def __init__(self, stream: TextIO | None = None, live: bool | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.quiet = quiet
        self._bar = None
        self._task = None

    def log(self, message: str) -> None:
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.console.print(message, markup=False, highlight=False)
        else:
            print(message, file=self.stream, flush=True)

    def start_epoch(self, epoch: int, epochs: int, batches: int) -> None:
        if self.quiet or not self.live:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeRemainingColumn

        if self._bar is None:  # drawn on this Progress's stream (stderr under --json), never elsewhere
            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), transient=True, console=Console(file=self.stream))
            self._bar.start()
        self._task = self._bar.add_task(f"epoch {epoch}/{epochs}", total=batches)

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def end_epoch(self, row: MetricsRow | None, epochs: int, improved: bool = False) -> None:
        """Print the epoch's line; ``row`` is None for an epoch that did not finish."""
        if self._bar is not None and self._task is not None:
            self._bar.remove_task(self._task)
            self._task = None
        if row is not None:
            self.log(format_epoch(row, epochs, improved))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
