"""The run's figures, drawn with matplotlib's object API (no pyplot global state)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cnnlab.analysis.curves import CurveReading
from cnnlab.run.record import MetricsRow


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (Agg, tight bounding box)."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def _series(rows: Sequence[MetricsRow], key: str) -> tuple[list[int], list[float]]:
    points = [(r.epoch, getattr(r, key)) for r in rows if getattr(r, key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def curves_png(rows: Sequence[MetricsRow], best_epoch: int | None = None, title: str = "",
               reading: CurveReading | None = None) -> bytes:
    """Loss and accuracy per epoch, train vs val, as a PNG; ``reading`` marks the epoch of lowest
    validation loss and shades what follows it when the curves overfit."""
    fig = Figure(figsize=(10, 3.8))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, metric, label in ((ax_loss, "loss", "loss"), (ax_acc, "acc", "top-1 accuracy")):
        for split, style in (("train", "-o"), ("val", "-s")):
            x, y = _series(rows, f"{split}_{metric}")
            if x:
                ax.plot(x, y, style, markersize=3, label=split)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best (epoch {best_epoch})")
        if reading is not None and reading.lowest_val_loss_epoch is not None:
            low = reading.lowest_val_loss_epoch
            ax.axvline(low, color="tab:red", linestyle="--", alpha=0.6, label=f"lowest val loss (epoch {low})")
            if reading.overfitting:
                ax.axvspan(low, rows[-1].epoch, color="tab:red", alpha=0.08, label="overfitting")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return png_bytes(fig)


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
    return png_bytes(fig)


def gallery_png(images: np.ndarray, titles: Sequence[str], *, columns: int = 4, title: str = "",
                cell: tuple[float, float] = (2.6, 2.8), dpi: int = 110) -> bytes:
    """uint8 images (k, C, H, W) in a grid, each under its title (fastai's ``plot_top_losses`` and
    ``show_batch``), pixels as they are; ``cell`` is one image's width and height in inches."""
    k = len(images)
    rows = max(1, -(-k // columns))
    fig = Figure(figsize=(cell[0] * columns, cell[1] * rows))
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, image, text in zip(axes, images, titles):
        picture = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)  # (H, W) or (H, W, 3)
        ax.imshow(picture, cmap="gray" if image.shape[0] == 1 else None, vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(text, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return png_bytes(fig, dpi)


def binary_curves_png(binary: dict) -> bytes:
    """The ROC curve (with its AUC) and the precision-recall curve (with average precision)."""
    fig = Figure(figsize=(10, 4))
    ax_roc, ax_pr = fig.subplots(1, 2)
    roc, pr = binary["roc_curve"], binary["pr_curve"]
    ax_roc.plot(roc["fpr"], roc["tpr"], label=f"AUC {binary['roc_auc']:.4f}")
    ax_roc.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax_roc.set_xlabel("false positive rate")
    ax_roc.set_ylabel("true positive rate")
    ax_pr.step(pr["recall"], pr["precision"], where="post", label=f"AP {binary['average_precision']:.4f}")
    ax_pr.set_xlabel("recall")
    ax_pr.set_ylabel("precision")
    for ax, name in ((ax_roc, "ROC"), (ax_pr, f"precision-recall ({binary['positive_class']} positive)")):
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    return png_bytes(fig)
