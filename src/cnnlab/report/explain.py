"""The figures of ``cnnlab explain``: Grad-CAM and saliency per image, the first layer's filters, the stages.

All are drawn in memory before any is written, and small (a modest dpi, pixel maps without
interpolation) because report.html embeds them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cnnlab.analysis.explain import TARGETS, Maps, filter_grid
from cnnlab.report.plots import png_bytes
from cnnlab.run import RunDir

EXPLAIN_FIGURES = {"maps": "explain-gradcam.png", "filters": "explain-filters.png",
                   "activations": "explain-activations.png"}
ACTIVATION_CHANNELS = 8  # maps a stage: its most active channels
DPI = 90  # the figures go into report.html as base64; the maps are a few dozen pixels a side


def explain_figure_names(run_path: str | Path) -> list[str]:
    """The explain figures present in a run folder, in the order a report shows them."""
    return [name for name in EXPLAIN_FIGURES.values() if (Path(run_path) / name).is_file()]


def _show_image(ax: Axes, pixels: np.ndarray) -> None:
    """uint8 (C, H, W) as the model saw it, before normalization."""
    if pixels.shape[0] == 1:
        ax.imshow(pixels[0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(pixels.transpose(1, 2, 0), interpolation="nearest")  # (H, W, 3)


def _show_gray(ax: Axes, pixels: np.ndarray) -> None:
    """uint8 (C, H, W) in gray, under a heat map: colours would fight the map's own."""
    ax.imshow(pixels.mean(axis=0), cmap="gray", vmin=0, vmax=255, interpolation="nearest")


def _mark(ax: Axes, peak: list[int] | None) -> None:
    if peak is not None:
        ax.plot(peak[1], peak[0], marker="+", color="cyan", markersize=9, markeredgewidth=1.5)


def maps_png(record: dict, maps: Maps) -> bytes:
    """A row per image: the input, then Grad-CAM (over the input) and saliency against the predicted
    and the true class, each with its peak marked."""
    columns = [(method, target) for method, per_target in (("gradcam", maps.gradcam), ("saliency", maps.saliency))
               for target in TARGETS if target in per_target]
    rows = len(record["images"])
    fig = Figure(figsize=(1.6 * (1 + len(columns)), 1.75 * rows), layout="constrained")
    axes = np.asarray(fig.subplots(rows, 1 + len(columns), squeeze=False))
    for ax in axes.ravel():
        ax.axis("off")
    for i, image in enumerate(record["images"]):
        _show_image(axes[i, 0], maps.pixels[i])
        true = f": true {image['true']}" if image["true"] is not None else ""
        axes[i, 0].set_title(f"{image['source']}{true}\npred {image['predicted']} {image['probability']:.0%}",
                             fontsize=7)
        for ax, (method, target) in zip(axes[i, 1:], columns):
            heat = (maps.gradcam if method == "gradcam" else maps.saliency)[target][i]  # (H, W)
            if method == "gradcam":
                _show_gray(ax, maps.pixels[i])
                ax.imshow(heat, cmap="jet", alpha=0.5, vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.imshow(heat, cmap="hot", interpolation="nearest")
            point = image["peaks"][f"{method}_{target}"]
            _mark(ax, point)
            name = "Grad-CAM" if method == "gradcam" else "saliency"
            flat = " (zero everywhere)" if point is None else ""
            ax.set_title(f"{name}: {image[target]}\n({target}){flat}", fontsize=7)
    layer = f"Grad-CAM at '{record['target_layer']}', " if record["target_layer"] else ""
    fig.suptitle(f"{layer}saliency |d score / d input|; + marks each peak", fontsize=9)
    return png_bytes(fig, DPI)


def filters_png(record: dict, maps: Maps) -> bytes:
    """The first conv layer's filters in a grid, each scaled to its own min-max."""
    grid = filter_grid(maps.filters)  # (gh, gw, 1 or 3) in [0, 1]
    O, I, kh, kw = maps.filters.shape
    side = min(8.0, max(3.0, grid.shape[1] / 8))
    fig = Figure(figsize=(side, side * grid.shape[0] / grid.shape[1] + 0.6), layout="constrained")
    ax = fig.subplots()
    ax.imshow(grid[:, :, 0] if grid.shape[2] == 1 else grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    ax.set_title(f"first conv layer '{record['first_conv']['name']}': {O} filters {I}x{kh}x{kw}, "
                 "each scaled to its own min-max", fontsize=8)
    return png_bytes(fig, DPI)


def activations_png(record: dict, maps: Maps) -> bytes:
    """A row per stage: the first image's most active channels there, each on its own scale."""
    rows = len(maps.stages)
    k = min(ACTIVATION_CHANNELS, max(a.shape[0] for _, a in maps.stages))
    fig = Figure(figsize=(1.3 * (k + 1), 1.45 * rows), layout="constrained")
    axes = np.asarray(fig.subplots(rows, k + 1, squeeze=False))
    for ax in axes.ravel():
        ax.axis("off")
    for row, (name, activation) in zip(axes, maps.stages):  # activation (C, h, w)
        _show_image(row[0], maps.pixels[0])
        C, h, w = activation.shape
        row[0].set_title(f"{name}\n{C}x{h}x{w}", fontsize=7)
        order = np.argsort(-activation.mean(axis=(1, 2)), kind="stable")[:k]
        for ax, channel in zip(row[1:], order):
            ax.imshow(activation[channel], cmap="viridis", interpolation="nearest")
            ax.set_title(f"channel {channel}", fontsize=7)
    fig.suptitle(f"activations of {record['images'][0]['source']} at each stage: the {k} most active channels",
                 fontsize=9)
    return png_bytes(fig, DPI)


def explain_figures(record: dict, maps: Maps) -> dict[str, bytes]:
    """Each figure of an explain.json ``record`` as PNG bytes, by file name; a model without a
    convolution has the maps figure only."""
    figures = {EXPLAIN_FIGURES["maps"]: maps_png(record, maps)}
    if maps.filters is not None:
        figures[EXPLAIN_FIGURES["filters"]] = filters_png(record, maps)
    if maps.stages:
        figures[EXPLAIN_FIGURES["activations"]] = activations_png(record, maps)
    return figures


def write_explain_figures(run_path: str | Path, record: dict, maps: Maps) -> list[Path]:
    """Draw every figure, then write them into the run folder (atomically, each)."""
    figures = explain_figures(record, maps)  # all drawn before the first is written
    run = RunDir.open(run_path)
    return [run.write_file(name, data) for name, data in figures.items()]
