"""Solver: minibatch training of a scratch model with one update rule per parameter.

As cs231n's ``Solver``: epochs of shuffled minibatches, an update rule from ``optim``, the
learning rate multiplied by ``lr_decay`` after each epoch, the loss and accuracy history, and
the best parameters on validation, restored into the model at the end. Cleaner in that data
comes as explicit (X, y) pairs, every epoch yields one metrics row (the same keys as the torch
engine's), and ``trainer_state`` returns what a checkpoint needs besides the weights (the
caller commits it: ``cnnlab.scratch.train`` writes it into the run directory).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.scratch.base import ScratchModel
from cnnlab.scratch.layers import softmax_loss
from cnnlab.scratch.optim import get_update_rule, hyperparameters


def topk_correct(scores: np.ndarray, y: np.ndarray, k: int) -> int:
    """How many rows of scores (N, C) rank their label among the k highest."""
    k = min(k, scores.shape[1])
    label_score = scores[np.arange(len(y)), y][:, None]
    return int(np.sum((scores > label_score).sum(axis=1) < k))  # fewer than k classes beat the label


def evaluate(model: ScratchModel, X: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> dict[str, Any]:
    """Test-mode mean loss, top-1 and top-5 accuracy (fractions), and predictions (N,) of X, y."""
    loss_sum, top5, predictions = 0.0, 0, []
    for start in range(0, len(y), batch_size):
        scores = model.scores(X[start:start + batch_size])
        labels = y[start:start + batch_size]
        loss_sum += float(softmax_loss(scores, labels)[0]) * len(labels)
        top5 += topk_correct(scores, labels, 5)
        predictions.append(scores.argmax(axis=1))
    predictions = np.concatenate(predictions) if predictions else np.zeros(0, np.int64)
    n = max(len(y), 1)
    return {"loss": loss_sum / n, "acc": float(np.mean(predictions == y)) if len(y) else 0.0,
            "top5": top5 / n, "predictions": predictions}


class Solver:
    def __init__(self, model: ScratchModel, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
                 *, update_rule: str = "sgd", optim_config: dict[str, Any] | None = None, lr_decay: float = 1.0,
                 batch_size: int = 100, num_epochs: int = 10, seed: int = 0, verbose: bool = False) -> None:
        """train, val: (X (N, ...), y (N,)); update_rule: a name in ``optim.UPDATE_RULES``;
        optim_config: its hyperparameters (lr, momentum, ...), copied for every parameter;
        lr_decay: lr multiplier after each epoch; seed: the shuffling."""
        self.model = model
        self.X_train, self.y_train = train
        self.X_val, self.y_val = val
        self.update_rule = get_update_rule(update_rule)
        self.update_rule_name = update_rule
        if batch_size < 1 or num_epochs < 0 or lr_decay <= 0:
            raise CnnlabError(f"need batch_size >= 1, num_epochs >= 0 and lr_decay > 0, "
                              f"got {batch_size}, {num_epochs}, {lr_decay}")
        if len(self.y_train) < batch_size:
            raise CnnlabError(f"batch_size {batch_size} is larger than the {len(self.y_train)} training examples")
        self.batch_size, self.num_epochs, self.lr_decay = batch_size, num_epochs, lr_decay
        self.rng = np.random.default_rng(seed)
        self.verbose = verbose
        base = hyperparameters(update_rule, optim_config)
        self.optim_configs = {name: dict(base) for name in model.params}
        self.epoch = 0
        self.loss_history: list[float] = []  # one per iteration
        self.rows: list[dict[str, Any]] = []  # one per epoch
        self.best_val_acc, self.best_epoch = -1.0, 0
        self.best_state: dict[str, np.ndarray] | None = None
        self.divergence: dict[str, Any] | None = None  # epoch, step, lr, last_finite_loss of a non-finite loss

    @property
    def lr(self) -> float:
        return next(iter(self.optim_configs.values()))["lr"]

    def _step(self, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """One minibatch: forward, backward, and an update of every parameter. Returns (loss, scores)."""
        loss, grads, scores = self.model.forward_backward(X, y)
        params, configs = self.model.params, self.optim_configs
        for name, w in params.items():
            params[name], configs[name] = self.update_rule(w, grads[name], configs[name])
        return float(loss), scores

    def train_one_epoch(self) -> dict[str, Any]:
        """Shuffle, then step through N // batch_size batches (the remainder is left out, a
        different part each epoch). Returns the running mean loss and accuracies and the time."""
        start = time.perf_counter()
        order = self.rng.permutation(len(self.y_train))
        num_batches = len(order) // self.batch_size
        loss_sum, correct, top5, seen = 0.0, 0, 0, 0
        for b in range(num_batches):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            y = self.y_train[idx]
            loss, scores = self._step(self.X_train[idx], y)
            if not np.isfinite(loss):
                last = self.loss_history[-1] if self.loss_history else None
                self.divergence = {"epoch": self.epoch, "step": b + 1, "lr": self.lr, "last_finite_loss": last}
                break
            self.loss_history.append(loss)
            loss_sum += loss * len(y)
            correct += int(np.sum(scores.argmax(axis=1) == y))
            top5 += topk_correct(scores, y, 5)
            seen += len(y)
        seconds = time.perf_counter() - start
        n = max(seen, 1)
        return {"loss": loss_sum / n if seen else float("nan"), "acc": correct / n, "top5": top5 / n,
                "seconds": seconds, "images_per_s": seen / seconds if seconds else 0.0}

    def train(self, on_epoch_end: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
        """Run the epochs, then load the best-on-validation state into the model. Each epoch's
        row (epoch, lr, train_loss, train_acc, train_top5, val_loss, val_acc, val_top5,
        epoch_time, val_time, images_per_s) goes to ``on_epoch_end`` as soon as it is done, with
        the solver in the state the next epoch starts from. A non-finite loss ends training
        without a row for that epoch and sets ``divergence``."""
        for _ in range(self.num_epochs):
            self.epoch += 1
            lr = self.lr
            train = self.train_one_epoch()
            if self.divergence is not None:
                break
            val_start = time.perf_counter()
            val = evaluate(self.model, self.X_val, self.y_val)
            row = {"epoch": self.epoch, "lr": lr, "train_loss": train["loss"], "train_acc": train["acc"],
                   "train_top5": train["top5"], "val_loss": val["loss"], "val_acc": val["acc"],
                   "val_top5": val["top5"], "epoch_time": train["seconds"],
                   "val_time": time.perf_counter() - val_start, "images_per_s": train["images_per_s"]}
            self.rows.append(row)
            if val["acc"] > self.best_val_acc:
                self.best_val_acc, self.best_epoch = val["acc"], self.epoch
                self.best_state = self.model.state_dict()
            for config in self.optim_configs.values():
                config["lr"] *= self.lr_decay
            if self.verbose:
                print(f"(epoch {self.epoch}/{self.num_epochs}) loss {train['loss']:.4f} train acc {train['acc']:.4f} "
                      f"val acc {val['acc']:.4f} ({train['seconds']:.1f}s)", flush=True)
            if on_epoch_end:
                on_epoch_end(row)
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self.rows

    def trainer_state(self) -> dict[str, Any]:
        """A copy of everything besides the weights that the next epoch depends on (arrays and plain values)."""
        return {"epoch": self.epoch, "update_rule": self.update_rule_name,
                "optim_configs": copy.deepcopy(self.optim_configs), "rng": self.rng.bit_generator.state, "best_epoch": self.best_epoch,
                "best_val_acc": self.best_val_acc}
