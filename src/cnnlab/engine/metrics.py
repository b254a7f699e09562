"""Running metrics: top-k accuracy and the confusion matrix, accumulated on the device.

Sums stay tensors until the epoch ends, so a GPU is not synchronised every batch.
"""

from __future__ import annotations

import torch


class AverageMeter:
    """Weighted running mean (practical work 1cd's AverageMeter), kept as a device tensor."""

    def __init__(self) -> None:
        self.total: torch.Tensor | float = 0.0
        self.count = 0

    def update(self, value: torch.Tensor, n: int) -> None:
        self.total = self.total + value.detach() * n
        self.count += n

    @property
    def avg(self) -> float:
        return float(self.total) / self.count if self.count else float("nan")


def topk_correct(scores: torch.Tensor, targets: torch.Tensor, ks: tuple[int, ...]) -> list[torch.Tensor]:
    """Number of rows whose target is among the k best scores, for each k. scores (N, K), targets (N,)."""
    kmax = max(ks)
    top = scores.topk(kmax, dim=1).indices  # (N, kmax)
    hits = top.eq(targets[:, None])  # (N, kmax)
    return [hits[:, :k].any(dim=1).sum() for k in ks]


def confusion_update(matrix: torch.Tensor, preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Add counts to a (K, K) matrix: rows are true classes, columns predictions."""
    K = matrix.shape[0]
    return matrix + torch.bincount(targets * K + preds, minlength=K * K).view(K, K)
