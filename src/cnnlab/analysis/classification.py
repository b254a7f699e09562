"""Classification metrics from a model's predictions, in NumPy (checked against scikit-learn's).

Every function takes the arrays one evaluation pass produces: ``labels`` (N,) true classes,
``probs`` (N, K) class probabilities, and returns plain numbers and lists, ready for JSON.
The conventions are scikit-learn's: a class never predicted has precision 0, the weighted
average weighs by support, and ROC-AUC counts tied scores as half a win.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) int64 counts: rows are true classes, columns predictions."""
    return np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


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


def averages(metrics: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Macro (plain mean over classes) and weighted (by support) precision, recall and F1."""
    support = metrics["support"]
    weights = support / support.sum() if support.sum() else np.zeros_like(support)
    return {kind: {name: float(np.sum(metrics[name] * w)) for name in ("precision", "recall", "f1")}
            for kind, w in (("macro", np.full_like(support, 1 / len(support))), ("weighted", weights))}


def topk_accuracy(labels: np.ndarray, probs: np.ndarray, k: int) -> float:
    """Fraction of rows whose true class is among the k most probable."""
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]  # (N, k)
    return float((top == labels[:, None]).any(axis=1).mean())


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve for binary ``labels`` (1 = positive) and positive-class ``scores``.

    The Mann-Whitney form: the chance that a random positive scores above a random negative,
    ties counting half, from the ranks of the scores (average ranks for ties).
    """
    positives = labels == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")  # undefined with one class present (scikit-learn raises)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    # average rank of each run of equal scores (1-based)
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(scores)]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + 1 + end) / 2
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def precision_recall_curve(labels: np.ndarray, scores: np.ndarray) -> dict[str, list[float]]:
    """Precision and recall at each distinct score threshold, as scikit-learn's curve.

    Thresholds rise; the last point is precision 1, recall 0 (no positive predictions); with no
    positive label at all, recall is 1 throughout (scikit-learn's convention).
    ``average_precision`` is sum over thresholds of (R_n - R_{n-1}) P_n.
    """
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], (labels[order] == 1)
    distinct = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # the last index of each threshold
    tp = np.cumsum(y)[distinct]
    fp = (distinct + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / tp[-1] if tp[-1] else np.ones_like(tp, dtype=np.float64)
    precision, recall = np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0]  # recall falls
    thresholds = s[distinct][::-1]
    ap = float(-np.sum(np.diff(recall) * precision[:-1]))
    return {"precision": precision.tolist(), "recall": recall.tolist(), "thresholds": thresholds.tolist(),
            "average_precision": ap}


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> dict[str, list[float]]:
    """False and true positive rates at each distinct threshold, from (0, 0) up (scikit-learn's
    ``roc_curve`` with ``drop_intermediate=False``)."""
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], (labels[order] == 1)
    distinct = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    tp = np.cumsum(y)[distinct]
    fp = (distinct + 1) - tp
    tpr = np.r_[0.0, tp / tp[-1]] if tp[-1] else np.full(len(tp) + 1, np.nan)
    fpr = np.r_[0.0, fp / fp[-1]] if fp[-1] else np.full(len(fp) + 1, np.nan)
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": np.r_[np.inf, s[distinct]].tolist()}


def most_confused(matrix: np.ndarray, classes: list[str], *, top: int = 10) -> list[dict]:
    """The off-diagonal cells with the most images, largest first (fastai's ``most_confused``)."""
    counts = np.array(matrix, dtype=np.int64)
    np.fill_diagonal(counts, 0)
    true, pred = np.unravel_index(np.argsort(-counts, axis=None, kind="stable"), counts.shape)
    pairs = [(int(t), int(p)) for t, p in zip(true, pred) if counts[t, p] > 0][:top]
    return [{"true": classes[t], "predicted": classes[p], "count": int(counts[t, p])} for t, p in pairs]


def top_losses(labels: np.ndarray, probs: np.ndarray, *, top: int = 16) -> list[dict]:
    """The misclassified images with the highest loss, -log p(true class), highest first
    (fastai's ``plot_top_losses``); ``index`` is the image's position in the split."""
    preds = probs.argmax(axis=1)
    true_prob = probs[np.arange(len(labels)), labels]
    losses = -np.log(np.clip(true_prob, 1e-12, None))
    wrong = np.flatnonzero(preds != labels)
    worst = wrong[np.argsort(-losses[wrong], kind="stable")][:top]
    return [{"index": int(i), "true": int(labels[i]), "predicted": int(preds[i]), "loss": float(losses[i]),
             "prob_predicted": float(probs[i, preds[i]]), "prob_true": float(true_prob[i])} for i in worst]
