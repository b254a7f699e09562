"""Solver: it learns, keeps the best-on-validation state, decays lr, stops at a non-finite loss."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.errors import CnnlabError
from cnnlab.scratch import FullyConnectedNet, Solver, evaluate
from cnnlab.scratch.solver import topk_correct


CENTRES = np.random.default_rng(42).standard_normal((4, 10)) * 3


def _blobs(n, rng):
    """Gaussian blobs around four fixed centres: separable enough to learn in a second."""
    y = rng.integers(0, len(CENTRES), n)
    return CENTRES[y] + rng.standard_normal((n, CENTRES.shape[1])), y


def test_solver_learns_and_restores_the_best_epoch():
    rng = np.random.default_rng(0)
    train, val = _blobs(600, rng), _blobs(200, rng)
    model = FullyConnectedNet([32], input_dim=10, num_classes=4, normalization="batchnorm", seed=0)
    solver = Solver(model, train, val, update_rule="sgd_momentum", optim_config={"lr": 0.05}, lr_decay=0.5,
                    batch_size=50, num_epochs=4)
    rows, states = [], []
    solver.train(on_epoch_end=lambda row: (rows.append(row), states.append(solver.trainer_state())))
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert [r["lr"] for r in rows] == pytest.approx([0.05, 0.025, 0.0125, 0.00625])
    assert set(rows[0]) >= {"epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "epoch_time",
                            "images_per_s"}
    assert len(solver.loss_history) == 4 * (600 // 50)
    assert rows[-1]["val_acc"] > 0.9 and rows[-1]["train_loss"] < rows[0]["train_loss"]
    best = max(rows, key=lambda r: r["val_acc"])
    assert solver.best_epoch == best["epoch"]
    assert evaluate(model, *val)["acc"] == pytest.approx(best["val_acc"])  # the best state is loaded
    # What a checkpoint commits after each epoch is the state the next epoch starts from: lr already decayed.
    assert [s["epoch"] for s in states] == [1, 2, 3, 4]
    assert [s["optim_configs"]["W1"]["lr"] for s in states] == pytest.approx([0.025, 0.0125, 0.00625, 0.003125])
    assert states[-1]["best_epoch"] == best["epoch"]


def test_a_non_finite_loss_stops_training_without_a_row():
    rng = np.random.default_rng(0)
    train, val = _blobs(600, rng), _blobs(200, rng)
    model = FullyConnectedNet([32], input_dim=10, num_classes=4, seed=0)
    solver = Solver(model, train, val, update_rule="sgd", optim_config={"lr": 1e6}, batch_size=50, num_epochs=4)
    with np.errstate(over="ignore", invalid="ignore"):  # the overflow is the point of the test
        rows = solver.train()
    assert solver.divergence is not None and solver.divergence["epoch"] == len(rows) + 1
    assert all(np.isfinite(r["train_loss"]) for r in rows)
    assert np.isfinite(solver.loss_history).all() and solver.divergence["last_finite_loss"] == solver.loss_history[-1]


def test_evaluate_and_topk():
    scores = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    assert topk_correct(scores, np.array([0, 0]), 1) == 1
    assert topk_correct(scores, np.array([2, 0]), 2) == 0
    assert topk_correct(scores, np.array([2, 0]), 3) == 2


def test_solver_refuses_bad_settings():
    rng = np.random.default_rng(0)
    data = _blobs(20, rng)
    model = FullyConnectedNet([4], input_dim=10, num_classes=4)
    with pytest.raises(CnnlabError, match="unknown update rule 'adagrad'"):
        Solver(model, data, data, update_rule="adagrad")
    with pytest.raises(CnnlabError, match="batch_size 100 is larger than the 20 training examples"):
        Solver(model, data, data, batch_size=100)
    with pytest.raises(CnnlabError, match="has no hyperparameter 'momentum'"):
        Solver(model, data, data, update_rule="adam", optim_config={"momentum": 0.9}, batch_size=10)
