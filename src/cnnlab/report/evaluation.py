"""The figures of ``cnnlab eval``: confusion matrix, highest-loss mistakes, ROC and PR curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnlab.report.plots import binary_curves_png, confusion_png, gallery_png
from cnnlab.run import RunDir
from cnnlab.run.rundir import evaluation_key


def eval_figure_names(key: str) -> dict[str, str]:
    """The figure files of eval-<key>.json (key: test, val, test-int8, ...)."""
    return {"confusion": f"eval-{key}-confusion.png", "top_losses": f"eval-{key}-top-losses.png",
            "binary": f"eval-{key}-roc-pr.png"}


def write_eval_figures(run_path: str | Path, record: dict, gallery: np.ndarray) -> list[Path]:
    """Draw the figures of one ``eval-<split>.json`` record; ``gallery`` holds the uint8 images
    (k, C, H, W) of its ``top_losses``, in order."""
    run = RunDir.open(run_path)
    split, classes = record["split"], record["classes"]
    names = eval_figure_names(evaluation_key(record))
    model = "int8 model, " if record.get("int8") else ""
    title = f"{split} set, {model}{record['checkpoint']} checkpoint (epoch {record['epoch']})"
    paths = [run.write_file(names["confusion"], confusion_png(np.array(record["confusion"]), classes, title))]
    if len(gallery):
        titles = [f"{classes[t['predicted']]} / {classes[t['true']]}\nloss {t['loss']:.2f}, p {t['prob_predicted']:.2f}"
                  for t in record["top_losses"]]
        paths.append(run.write_file(names["top_losses"],
                                    gallery_png(gallery, titles, title="highest-loss mistakes: predicted / true")))
    if record.get("binary"):
        paths.append(run.write_file(names["binary"], binary_curves_png(record["binary"])))
    return paths
