"""Metrics against scikit-learn, evaluation in eval mode, and the monitor's choice of the best epoch."""

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, log_loss, top_k_accuracy_score

from cnnlab.data.loader import DeviceLoader
from cnnlab.data.normalize import ChannelStats
from cnnlab.engine.losses import build_loss
from cnnlab.engine.loop import evaluate
from cnnlab.engine.metrics import confusion_update, topk_correct
from cnnlab.engine.monitor import Monitor
from cnnlab.engine.precision import resolve_precision
from cnnlab.models import build_model
from cnnlab.run import MetricsRow

FP32 = resolve_precision("cpu", "fp32", False)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_topk_equals_scikit_learn(k):
    rng = np.random.default_rng(k)
    scores, labels = rng.standard_normal((500, 10)), rng.integers(0, 10, 500)
    (hits,) = topk_correct(torch.from_numpy(scores), torch.from_numpy(labels), (k,))
    assert int(hits) / 500 == pytest.approx(top_k_accuracy_score(labels, scores, k=k, labels=range(10)))


def test_confusion_rows_are_true_classes_as_scikit_learn():
    rng = np.random.default_rng(0)
    labels, predictions = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    ours = confusion_update(torch.zeros(4, 4, dtype=torch.int64), torch.from_numpy(predictions),
                            torch.from_numpy(labels))
    assert (ours.numpy() == confusion_matrix(labels, predictions, labels=range(4))).all()


def _dropout_bn_model():
    torch.manual_seed(0)
    return build_model("simple_nn_bn", in_chans=1, input_size=(16, 16), dropout=0.5)


def test_evaluate_runs_in_eval_mode_and_equals_scikit_learn():
    model = _dropout_bn_model()
    x, y = torch.randint(0, 256, (300, 1, 16, 16), dtype=torch.uint8), torch.randint(0, 10, (300,))
    model.train()
    with torch.no_grad():
        model(x.float())  # move the BN statistics away from their initial values
    stats = ChannelStats((0.5,), (0.25,))
    loader = DeviceLoader(x, y, batch_size=64, stats=stats)
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    result = evaluate(model, loader, build_loss("cross_entropy", 10), FP32, num_classes=10)
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(batch) for batch, _ in loader]).double()
    probabilities = logits.softmax(1).numpy()
    assert result.top1 == pytest.approx(accuracy_score(y, logits.argmax(1)))
    assert result.top5 == pytest.approx(top_k_accuracy_score(y, probabilities, k=5, labels=range(10)))
    assert result.loss == pytest.approx(log_loss(y, probabilities, labels=range(10)), rel=1e-5)
    assert (result.confusion.numpy() == confusion_matrix(y, logits.argmax(1), labels=range(10))).all()
    again = evaluate(model, loader, build_loss("cross_entropy", 10), FP32, num_classes=10)
    assert again.loss == result.loss  # no dropout noise, and the BN statistics did not move
    assert all(torch.equal(v, buffers[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("K", [2, 5, 6, 10])
def test_top5_is_reported_only_with_more_than_five_classes(K):
    """With K <= 5 classes every label is in the top 5: the figure says nothing and is left out."""
    torch.manual_seed(K)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, K))
    x, y = torch.randint(0, 256, (200, 1, 4, 4), dtype=torch.uint8), torch.randint(0, K, (200,))
    loader = DeviceLoader(x, y, batch_size=64, stats=ChannelStats((0.5,), (0.25,)))
    result = evaluate(model, loader, build_loss("cross_entropy", K), FP32, num_classes=K)
    with torch.no_grad():
        scores = torch.cat([model(batch) for batch, _ in loader]).numpy()
    assert result.images == 200
    assert result.top1 == pytest.approx(accuracy_score(y, scores.argmax(1)))
    if K <= 5:
        assert result.top5 is None
    else:
        assert result.top5 == pytest.approx(top_k_accuracy_score(y, scores, k=5, labels=range(K)))


def _row(epoch: int, val_acc: float, val_loss: float) -> MetricsRow:
    return MetricsRow(epoch, 0.1, 1.0, 0.5, None, val_loss, val_acc, None, 1.0, 0.1, 100.0)


@pytest.mark.parametrize("key, values, best_epoch", [
    ("val_acc", [(0.5, 1.0), (0.7, 0.9), (0.6, 0.8)], 2),  # the highest accuracy
    ("val_loss", [(0.5, 1.0), (0.7, 0.9), (0.6, 0.8)], 3),  # the lowest loss
    ("val_acc", [(0.5, 1.0), (0.5, 0.2), (0.4, 0.1)], 1),  # a tie does not move the best
])
def test_the_monitor_picks_the_best_epoch(key, values, best_epoch):
    monitor = Monitor(key, patience=None, min_delta=0.0)
    improved = [monitor.update(_row(e, acc, loss)) for e, (acc, loss) in enumerate(values, 1)]
    assert monitor.best_epoch == best_epoch and improved[best_epoch - 1]
    assert monitor.best == dict(val_acc=values[best_epoch - 1][0], val_loss=values[best_epoch - 1][1])[key]


@pytest.mark.parametrize("key", ["val_acc", "val_loss", "val_top5"])
def test_the_monitor_maximises_accuracies_and_minimises_losses(key):
    monitor = Monitor(key, patience=None, min_delta=0.0)
    others = dict(lr=0.1, train_loss=1.0, train_acc=0.5, train_top5=0.8, val_loss=0.9, val_acc=0.4, val_top5=0.8,
                  epoch_time=1.0, val_time=0.1, images_per_s=100.0)
    for epoch, value in enumerate([0.5, 0.7, 0.6], 1):
        monitor.update(MetricsRow(epoch=epoch, **{**others, key: value}))
    assert monitor.best_epoch == (1 if key == "val_loss" else 2)


def test_the_monitor_stops_after_patience_and_skips_non_finite_values():
    monitor = Monitor("val_acc", patience=2, min_delta=0.01)
    assert monitor.update(_row(1, 0.50, 1.0))
    assert not monitor.update(_row(2, 0.505, 1.0))  # below min_delta: stale
    assert not monitor.should_stop
    assert not monitor.update(_row(3, float("nan"), 1.0))
    assert monitor.should_stop and monitor.best_epoch == 1
