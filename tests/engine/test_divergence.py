"""Divergence never reaches a checkpoint or the test set; finished and diverged runs refuse --resume."""

import math

import pytest
import torch
import torch.nn.functional as F

from cnnlab.engine.fit import fit
from cnnlab.engine.losses import Loss
from cnnlab.engine.loop import FiniteCheck, NonFiniteLoss, train_one_epoch
from cnnlab.engine.precision import resolve_precision
from cnnlab.engine.progress import Progress
from cnnlab.errors import CnnlabError
from cnnlab.run import RunDir
from tests.conftest import with_overrides

QUIET = Progress(quiet=True)


def test_a_huge_lr_diverges_in_the_first_epoch_and_saves_nothing(tiny_config):
    summary = fit(with_overrides(tiny_config, "optim.lr=1.0e+6"), progress=QUIET)
    run = RunDir(summary.run_dir)
    assert summary.status == "diverged" and summary.test is None and run.confusion() is None
    d = summary.divergence
    assert d.epoch == 1 and d.step >= 1 and d.lr == pytest.approx(1e6) and d.what == "train loss"
    assert d.last_finite_loss is None or math.isfinite(d.last_finite_loss)
    assert run.checkpoints.epochs() == [] and run.metrics() == []


def test_divergence_in_epoch_2_keeps_epoch_1_whole(tiny_config, monkeypatch):
    """The loss turns NaN at the 3rd training batch of epoch 2 (8 batches an epoch)."""
    calls = {"train": 0}
    loss_call = Loss.__call__

    def nan_from_batch_11(self, logits, targets):
        loss = loss_call(self, logits, targets)
        if torch.is_grad_enabled():
            calls["train"] += 1
            if calls["train"] >= 11:
                return loss * float("nan")
        return loss

    monkeypatch.setattr(Loss, "__call__", nan_from_batch_11)
    config = with_overrides(tiny_config, "train.epochs=3")
    summary = fit(config, progress=QUIET)
    run = RunDir(summary.run_dir)
    assert summary.status == "diverged" and summary.epochs_run == 1
    assert (summary.divergence.epoch, summary.divergence.step) == (2, 3)
    assert run.checkpoints.epochs() == [1] and [r.epoch for r in run.metrics()] == [1]
    weights = run.checkpoints.load(1).weights
    assert all(torch.isfinite(w).all() for w in weights.values())  # the last finite checkpoint stays
    assert summary.divergence.last_finite_loss is not None and math.isfinite(summary.divergence.last_finite_loss)
    with pytest.raises(CnnlabError, match="diverged in epoch 2; resuming would repeat it"):
        fit(config, progress=QUIET, resume=summary.run_dir)


def test_a_finished_run_refuses_resume_and_keeps_its_record(tiny_config):
    summary = fit(tiny_config, progress=QUIET)
    before = (RunDir(summary.run_dir).path / "summary.json").read_bytes()
    with pytest.raises(CnnlabError, match="has completed after 2 epochs; there is nothing to resume"):
        fit(tiny_config, progress=QUIET, resume=summary.run_dir)
    assert (RunDir(summary.run_dir).path / "summary.json").read_bytes() == before  # training time not overwritten


def test_finite_check_names_the_first_bad_step_even_in_windows():
    check = FiniteCheck(torch.device("meta"), window=4)  # any non-CPU device checks in windows
    check(1, torch.tensor(2.0), 0.1)
    check(2, torch.tensor(1.5), 0.1)
    check(3, torch.tensor(float("nan")), 0.2)
    with pytest.raises(NonFiniteLoss) as caught:
        check(4, torch.tensor(float("inf")), 0.3)
    assert (caught.value.step, caught.value.last_finite_loss, caught.value.lr) == (3, 1.5, 0.2)


def test_a_non_finite_validation_loss_is_a_divergence_too(tiny_config, monkeypatch):
    """Weights still finite but the validation loss not (logits overflowing): epoch 2 is not committed."""
    loss_call, after_epoch_1 = Loss.__call__, []

    def nan_in_later_validation(self, logits, targets):
        loss = loss_call(self, logits, targets)
        return loss * float("nan") if after_epoch_1 and not torch.is_grad_enabled() else loss

    monkeypatch.setattr(Loss, "__call__", nan_in_later_validation)
    summary = fit(with_overrides(tiny_config, "train.epochs=3"), progress=QUIET, callbacks=[after_epoch_1.append])
    run = RunDir(summary.run_dir)
    assert summary.status == "diverged" and summary.test is None and run.confusion() is None
    assert (summary.divergence.epoch, summary.divergence.step, summary.divergence.what) == (2, None, "val loss")
    assert run.checkpoints.epochs() == [1] and [r.epoch for r in run.metrics()] == [1]


def test_on_the_cpu_a_non_finite_loss_stops_before_its_own_update():
    """Every loss is looked at before backward: the weights stay those after the last finite step."""
    calls = []

    def nan_at_step_3(logits, targets):
        calls.append(1)
        loss = F.cross_entropy(logits, targets)
        return loss * float("nan") if len(calls) == 3 else loss

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = [(torch.randn(8, 1, 4, 4), torch.randint(0, 10, (8,))) for _ in range(6)]
    after_each_step = []
    with pytest.raises(NonFiniteLoss) as caught:
        train_one_epoch(model, batches, Loss("nan_at_3", nan_at_step_3, 10, math.log(10)), optimizer, None,
                        resolve_precision("cpu", "fp32", False), num_classes=10,
                        on_batch=lambda: after_each_step.append({k: v.clone() for k, v in model.state_dict().items()}))
    assert caught.value.step == 3 and len(after_each_step) == 2
    assert all(torch.equal(v, after_each_step[-1][k]) for k, v in model.state_dict().items())
