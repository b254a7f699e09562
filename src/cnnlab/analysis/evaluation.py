"""``cnnlab eval``: a finished run's model evaluated again, from its folder alone.

``evaluate_run`` rebuilds the model (best or last checkpoint), the split and the recorded
normalization, runs the split in the run's own precision and memory format, and returns an
``Evaluation``: loss, top-1/top-5, the confusion matrix, per-class precision/recall/F1 with
macro and weighted averages, ROC-AUC and the precision-recall curve for two classes, the
most-confused pairs, the highest-loss mistakes and the inference timing. Nothing is written
here: ``write_evaluation`` writes ``eval-<split>.json`` only after everything succeeded, so a
failure leaves the run folder as it was.

An evaluation of the test split is recorded apart from ``summary.json``, whose test result
stays the one evaluated once at the end of training (test-set discipline).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnlab.analysis import classification as metrics
from cnnlab.analysis.predict import probabilities, run_precision
from cnnlab.analysis.quantize import load_quantized
from cnnlab.analysis.timing import inference_timing
from cnnlab.data.loader import DeviceLoader
from cnnlab.engine.loop import check_tta, eval_logits
from cnnlab.engine.losses import Loss, build_loss
from cnnlab.engine.precision import Precision
from cnnlab.errors import CnnlabError
from cnnlab.run import RunDir
from cnnlab.run.rundir import evaluation_key
from cnnlab.run.restore import restore_model, restore_splits

SPLITS = ("test", "val")
TTA = ("none", "flip")
TOP_LOSSES = 16  # images in the gallery: a 4 x 4 grid
MOST_CONFUSED = 10


@dataclass
class Evaluation:
    """One evaluation of a run on one split; fractions, not percentages."""

    split: str
    checkpoint: str  # best or last
    epoch: int  # the checkpoint's epoch
    tta: str
    images: int
    loss: float
    top1: float
    top5: float | None  # None with 5 classes or fewer
    classes: list[str]
    confusion: list[list[int]]  # rows true, columns predicted
    confusion_normalized: list[list[float]]  # each row divided by its count
    per_class: list[dict]  # class, precision, recall, f1, support
    averages: dict  # macro and weighted precision, recall, f1
    most_confused: list[dict]
    top_losses: list[dict]
    binary: dict | None  # roc_auc, average_precision, pr_curve, roc_curve (two classes only)
    timing: dict | None
    seconds: float  # the evaluation pass itself
    note: str = ""
    int8: bool = False  # the int8 model of cnnlab quantize, not the checkpoint's fp32 weights
    evaluated_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Pass:
    """What one pass over a split gives: mean loss, class probabilities (N, K), labels (N,)."""

    loss: float
    probs: np.ndarray
    labels: np.ndarray
    seconds: float


@torch.inference_mode()
def predict_split(model: nn.Module, loader: DeviceLoader, loss_fn: Loss, precision: Precision, tta: str) -> Pass:
    """One pass over ``loader``: as ``cnnlab.engine.loop.evaluate``, keeping every probability."""
    model.eval()
    total, probs, labels = 0.0, [], []
    start = time.perf_counter()
    for x, y in loader:
        logits = eval_logits(model, x, precision, tta)  # (B, K)
        total += float(loss_fn(logits, y)) * len(y)
        probs.append(probabilities(logits, loss_fn.num_outputs).cpu())
        labels.append(y.cpu())
    seconds = time.perf_counter() - start
    return Pass(total / loader.num_images, torch.cat(probs).numpy(), torch.cat(labels).numpy(), seconds)


def summarize(result: Pass, classes: list[str]) -> dict:
    """The metric fields of an ``Evaluation`` from one pass."""
    K = len(classes)
    labels, probs = result.labels, result.probs
    matrix = metrics.confusion_matrix(labels, probs.argmax(axis=1), K)
    per_class = metrics.per_class_metrics(matrix)
    binary = None
    if K == 2:
        pr = metrics.precision_recall_curve(labels, probs[:, 1])
        binary = {"positive_class": classes[1], "roc_auc": metrics.roc_auc(labels, probs[:, 1]),
                  "average_precision": pr.pop("average_precision"), "pr_curve": pr,
                  "roc_curve": metrics.roc_curve(labels, probs[:, 1])}
    rows = np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    return dict(
        images=len(labels), loss=result.loss, top1=metrics.topk_accuracy(labels, probs, 1),
        top5=metrics.topk_accuracy(labels, probs, 5) if K > 5 else None, classes=classes,
        confusion=matrix.tolist(), confusion_normalized=(matrix / rows).tolist(),
        per_class=[{"class": c, **{k: float(v[i]) for k, v in per_class.items()}} for i, c in enumerate(classes)],
        averages=metrics.averages(per_class), most_confused=metrics.most_confused(matrix, classes, top=MOST_CONFUSED),
        top_losses=metrics.top_losses(labels, probs, top=TOP_LOSSES), binary=binary)


def evaluate_run(run_path: str | Path, *, split: str = "test", checkpoint: str = "best", tta: str | None = None,
                 timing: bool = True, int8: bool = False) -> tuple[Evaluation, np.ndarray]:
    """Evaluate a run's ``checkpoint`` on ``split``; ``tta`` defaults to the run's own ``train.tta``.
    ``int8`` evaluates the model ``cnnlab quantize`` saved instead (on the CPU, from the checkpoint it
    was quantized from).

    Returns the evaluation and the uint8 images (k, C, H, W) of its ``top_losses``, in order.
    """
    if split not in SPLITS:
        raise CnnlabError(f"unknown split '{split}' (valid: {', '.join(SPLITS)})")
    if checkpoint not in ("best", "last"):
        raise CnnlabError(f"unknown checkpoint '{checkpoint}' (valid: best, last)")
    run = RunDir.open(run_path)
    config = run.config()
    tta = config.train.tta if tta is None else tta
    if tta not in TTA:
        raise CnnlabError(f"unknown test-time augmentation '{tta}' (valid: {', '.join(TTA)})")
    if int8:
        quantized = load_quantized(run.path)
        model, checkpoint = quantized.module, quantized.meta.get("checkpoint", "best")
        precision = Precision(torch.device("cpu"), None, channels_last=True)  # fp32 in and out, int8 inside
    else:
        model = restore_model(run.path, checkpoint)  # a run without that checkpoint is refused here
        precision = run_precision(run, config)
    epoch = run.checkpoints.resolve(checkpoint)
    splits, stats = restore_splits(run.path)
    check_tta(tta, stats)
    images, labels = (splits.test_images, splits.test_labels) if split == "test" else \
        (splits.val_images, splits.val_labels)
    model = model.to(precision.device, memory_format=torch.channels_last if precision.channels_last
                     else torch.contiguous_format)
    data = run.data_record()
    loss_fn = build_loss(config.loss.name, len(data.classes), label_smoothing=config.loss.label_smoothing,
                         margin=config.loss.margin)
    loader = DeviceLoader(images, labels, batch_size=config.data.eval_batch_size, stats=stats,
                          device=precision.device, channels_last=precision.channels_last)
    result = predict_split(model, loader, loss_fn, precision, tta)
    fields = summarize(result, list(data.classes))
    timed = inference_timing(model, loader.transform(loader.images[:64]), precision) if timing else None
    if timed and int8:
        timed["setting"] = "int8 (oneDNN kernels; fp32 in and out)"
    note = ("a separate evaluation: summary.json's test result stays the one evaluated once after training"
            if split == "test" else "")
    evaluation = Evaluation(split=split, checkpoint=checkpoint, epoch=epoch, tta=tta, timing=timed,
                            seconds=result.seconds, note=note, int8=int8, **fields)
    gallery = images[[t["index"] for t in evaluation.top_losses]]  # (k, C, H, W) uint8
    return evaluation, gallery


def write_evaluation(run_path: str | Path, evaluation: Evaluation) -> Path:
    """eval-<split>.json (eval-<split>-int8.json for the int8 model) in the run folder, atomically."""
    return RunDir.open(run_path).write_json(f"eval-{evaluation_key(evaluation.to_dict())}.json", evaluation.to_dict())
