"""The evaluation metrics, checked against scikit-learn's on the same predictions."""

import numpy as np
import pytest
from sklearn import metrics as sk

from cnnlab.analysis import classification as ours


def predictions(n: int, k: int, seed: int, ties: bool = False):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[labels]  # better than chance, not perfect
    if ties:
        logits = np.round(logits, 1)  # many equal scores
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, probs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multiclass_metrics_match_scikit_learn(seed):
    labels, probs = predictions(500, 10, seed)
    preds = probs.argmax(axis=1)
    matrix = ours.confusion_matrix(labels, preds, 10)
    np.testing.assert_array_equal(matrix, sk.confusion_matrix(labels, preds, labels=range(10)))
    per_class = ours.per_class_metrics(matrix)
    p, r, f, s = sk.precision_recall_fscore_support(labels, preds, labels=range(10), zero_division=0)
    for mine, theirs in zip((per_class["precision"], per_class["recall"], per_class["f1"], per_class["support"]),
                            (p, r, f, s)):
        np.testing.assert_allclose(mine, theirs, atol=1e-12)
    avg = ours.averages(per_class)
    for kind in ("macro", "weighted"):
        theirs = sk.precision_recall_fscore_support(labels, preds, labels=range(10), average=kind, zero_division=0)
        assert [avg[kind][m] for m in ("precision", "recall", "f1")] == pytest.approx(theirs[:3], abs=1e-12)
    for k in (1, 5):
        assert ours.topk_accuracy(labels, probs, k) == pytest.approx(
            sk.top_k_accuracy_score(labels, probs, k=k, labels=range(10)))


def test_a_class_never_predicted_has_precision_zero_as_in_scikit_learn():
    labels, preds = np.array([0, 1, 2, 2]), np.array([0, 0, 0, 2])
    per_class = ours.per_class_metrics(ours.confusion_matrix(labels, preds, 3))
    p, *_ = sk.precision_recall_fscore_support(labels, preds, zero_division=0)
    np.testing.assert_allclose(per_class["precision"], p)
    assert per_class["precision"][1] == 0


@pytest.mark.parametrize("ties", [False, True])
def test_binary_curves_match_scikit_learn(ties):
    labels, probs = predictions(400, 2, seed=3, ties=ties)
    scores = probs[:, 1]
    assert ours.roc_auc(labels, scores) == pytest.approx(sk.roc_auc_score(labels, scores), abs=1e-12)
    pr = ours.precision_recall_curve(labels, scores)
    precision, recall, thresholds = sk.precision_recall_curve(labels, scores)
    np.testing.assert_allclose(pr["precision"], precision)
    np.testing.assert_allclose(pr["recall"], recall)
    np.testing.assert_allclose(pr["thresholds"], thresholds)
    assert pr["average_precision"] == pytest.approx(sk.average_precision_score(labels, scores), abs=1e-12)
    roc = ours.roc_curve(labels, scores)
    fpr, tpr, thresholds = sk.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(roc["fpr"], fpr)
    np.testing.assert_allclose(roc["tpr"], tpr)
    np.testing.assert_allclose(roc["thresholds"], thresholds)


def test_most_confused_and_top_losses_by_hand():
    classes = ["a", "b", "c"]
    # true a predicted b twice, true c predicted a once; the rest right
    labels = np.array([0, 0, 0, 1, 2, 2])
    probs = np.array([[0.2, 0.8, 0.0], [0.4, 0.6, 0.0], [0.9, 0.1, 0.0],
                      [0.0, 1.0, 0.0], [0.7, 0.0, 0.3], [0.0, 0.0, 1.0]])
    matrix = ours.confusion_matrix(labels, probs.argmax(axis=1), 3)
    assert ours.most_confused(matrix, classes) == [{"true": "a", "predicted": "b", "count": 2},
                                                   {"true": "c", "predicted": "a", "count": 1}]
    worst = ours.top_losses(labels, probs, top=2)
    assert [w["index"] for w in worst] == [0, 4]  # -log 0.2 = 1.61 > -log 0.3 = 1.20 > -log 0.4
    assert worst[0]["loss"] == pytest.approx(-np.log(0.2)) and worst[0]["predicted"] == 1
