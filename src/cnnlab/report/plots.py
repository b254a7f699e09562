"""The run's figures, drawn with matplotlib's object API (no pyplot global state)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cnnlab.run.record import MetricsRow


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _series(rows: Sequence[MetricsRow], key: str) -> tuple[list[int], list[float]]:
    points = [(r.epoch, getattr(r, key)) for r in rows if getattr(r, key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def curves_png(rows: Sequence[MetricsRow], best_epoch: int | None = None, title: str = "") -> bytes:
    """Loss and accuracy per epoch, train vs val, as a PNG."""
    fig = Figure(figsize=(10, 3.8))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, metric, label in ((ax_loss, "loss", "loss"), (ax_acc, "acc", "top-1 accuracy")):
        for split, style in (("train", "-o"), ("val", "-s")):
            x, y = _series(rows, f"{split}_{metric}")
            if x:
                ax.plot(x, y, style, markersize=3, label=split)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best (epoch {best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _png(fig)


def confusion_png(matrix: np.ndarray, classes: Sequence[str], title: str = "") -> bytes:
    """Counts in each cell; colour is the row-normalized rate (recall along the diagonal)."""
    matrix = np.asarray(matrix)
    K = len(classes)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.55 * K + 2)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    ax.set_xticks(range(K), labels=classes, rotation=45, ha="right")
    ax.set_yticks(range(K), labels=classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if K <= 20:
        for i in range(K):
            for j in range(K):
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7,
                        color="white" if rates[i, j] > 0.5 else "black")
    if title:
        ax.set_title(title)
    return _png(fig)


def per_class_metrics(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall and F1 per class from a confusion matrix (rows true, columns predicted)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual}
