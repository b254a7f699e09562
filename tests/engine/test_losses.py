"""Losses against scikit-learn's metrics and hand formulas."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import hinge_loss, log_loss

from cnnlab.engine.losses import build_loss
from cnnlab.errors import CnnlabError


def test_binary_hinge_equals_scikit_learn():
    z = torch.randn(50, 1, dtype=torch.float64)
    t = torch.randint(0, 2, (50,))
    ours = build_loss("hinge", 2)(z, t).item()
    assert ours == pytest.approx(hinge_loss(t.numpy() * 2 - 1, z[:, 0].numpy()), rel=1e-6)


def test_multiclass_hinge_is_the_summed_svm_loss_over_classes():
    """torch's multi_margin_loss: mean over images of sum_{j != y} max(0, margin - s_y + s_j) / C (cs231n's
    multiclass SVM loss, divided by the number of classes), written out in numpy."""
    rng = np.random.default_rng(0)
    s, y = rng.standard_normal((40, 6)), rng.integers(0, 6, 40)
    margins = np.maximum(0, 0.5 - s[np.arange(40), y][:, None] + s)  # (N, C)
    margins[np.arange(40), y] = 0
    expected = (margins.sum(axis=1) / 6).mean()
    ours = build_loss("hinge", 6, margin=0.5)(torch.from_numpy(s), torch.from_numpy(y)).item()
    assert ours == pytest.approx(expected, rel=1e-6)


def test_bce_equals_scikit_learn_log_loss():
    z = torch.randn(50, 1, dtype=torch.float64)
    t = torch.randint(0, 2, (50,))
    probs = torch.sigmoid(z[:, 0]).numpy()
    assert build_loss("bce", 2)(z, t).item() == pytest.approx(log_loss(t.numpy(), probs), rel=1e-6)


def test_label_smoothing_formula():
    logits = torch.randn(20, 10)
    t = torch.randint(0, 10, (20,))
    logp = torch.log_softmax(logits, dim=1)
    eps = 0.1
    expected = -((1 - eps) * logp[torch.arange(20), t] + eps * logp.mean(dim=1)).mean()
    assert build_loss("cross_entropy", 10, label_smoothing=eps)(logits, t).item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("name, classes, expected", [
    ("cross_entropy", 10, math.log(10)), ("cross_entropy", 15, math.log(15)),
    ("bce", 2, math.log(2)), ("hinge", 2, 1.0), ("hinge", 10, 0.9),
])
def test_initial_loss_is_the_loss_of_zero_logits(name, classes, expected):
    loss = build_loss(name, classes)
    logits = torch.zeros(7, loss.num_outputs)
    assert loss.initial == pytest.approx(expected)
    assert loss(logits, torch.randint(0, classes, (7,))).item() == pytest.approx(expected, rel=1e-6)


def test_one_logit_scores_predict_class_one_when_positive():
    loss = build_loss("bce", 2)
    scores = loss.scores(torch.tensor([[2.0], [-0.5]]))
    assert scores.argmax(dim=1).tolist() == [1, 0]


def test_binary_loss_on_ten_classes_says_what_to_do():
    with pytest.raises(CnnlabError, match=r"two classes.*data.classes=\[a,b\]"):
        build_loss("bce", 10)
    with pytest.raises(CnnlabError, match="loss 'cross_entropy' has no option 'margin'"):
        build_loss("cross_entropy", 10, margin=2.0)
    assert np.isfinite(build_loss("hinge", 3, margin=2.0).initial)
