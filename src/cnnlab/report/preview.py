"""A grid of training images with their labels, as a PNG (``cnnlab data preview``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from cnnlab.report.plots import png_bytes


def preview_png(images: np.ndarray, labels: np.ndarray, classes: Sequence[str], *, columns: int = 8,
                title: str = "") -> bytes:
    """uint8 images (N, C, H, W) in a grid of ``columns``, each titled with its class name; pixels
    shown as they are (grayscale for one channel), not normalized."""
    N = len(images)
    rows = max(1, -(-N // columns))
    fig = Figure(figsize=(1.5 * columns, 1.7 * rows))
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, image, label in zip(axes, images, labels):
        C = image.shape[0]
        if C == 1:
            ax.imshow(image[0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(image.transpose(1, 2, 0), interpolation="nearest")  # (H, W, 3)
        ax.set_title(str(classes[int(label)]), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return png_bytes(fig, dpi=100)
