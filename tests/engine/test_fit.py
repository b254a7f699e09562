"""End-to-end runs on small synthetic data: the run directory, resume, stopping, test discipline."""

import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.engine.finetune import head_name
from cnnlab.engine.fit import final_test, fit
from cnnlab.engine.loop import evaluate
from cnnlab.engine.progress import Progress
from cnnlab.engine.session import setup
from cnnlab.errors import CnnlabError
from cnnlab.models import build_model
from cnnlab.report import write_report
from cnnlab.run import RunDir
from cnnlab.run.restore import restore_model, restore_splits
from tests.conftest import fit_killed_after, with_overrides

QUIET = Progress(quiet=True)
RUN_FILES = ["config.yaml", "data.json", "metrics.jsonl", "summary.json", "confusion.json", "model.txt"]


def test_a_run_writes_every_file(tiny_config):
    summary = fit(tiny_config, progress=QUIET)
    run = summary.run_dir
    for name in RUN_FILES:
        assert Path(run, name).is_file(), name
    rows = [json.loads(line) for line in open(f"{run}/metrics.jsonl")]
    assert [r["epoch"] for r in rows] == [1, 2]
    records = RunDir(run).metrics()
    assert summary.final == records[-1] and summary.best == max(records, key=lambda r: r.val_acc)  # ties: the first
    assert summary.time["epoch_mean_s"] == pytest.approx(sum(r.epoch_time for r in records) / 2)
    assert summary.time["train_wall_s"] == pytest.approx(sum(r.wall_time for r in records))
    assert summary.status == "completed" and summary.epochs_run == 2
    assert RunDir(run).checkpoints.epochs() == sorted({summary.best.epoch, 2})  # the best and the last
    assert summary.model["parameters"] == sum(p.numel() for p in restore_model(run).parameters())
    # The labs' sanity check: an untrained 10-class net starts near ln(10) = 2.30.
    assert summary.expected_initial_loss == pytest.approx(math.log(10))
    assert abs(summary.first_batch_loss - math.log(10)) < 0.25
    assert {"versions", "git", "device_name"} <= set(summary.environment)
    assert RunDir(run).summary() == summary and RunDir(run).data_record().source == "generated"


def test_run_folder_alone_rebuilds_model_split_and_normalization(tiny_config):
    summary = fit(tiny_config, progress=QUIET)
    run = summary.run_dir
    model = restore_model(run)
    splits, stats = restore_splits(run)
    from cnnlab.data.loader import DeviceLoader
    from cnnlab.engine.losses import build_loss
    from cnnlab.engine.precision import resolve_precision

    precision = resolve_precision("cpu", "fp32", "false")
    loss = build_loss("cross_entropy", splits.num_classes)
    val = evaluate(model, DeviceLoader(splits.val_images, splits.val_labels, batch_size=1000, stats=stats),
                   loss, precision, num_classes=splits.num_classes)
    test = evaluate(model, DeviceLoader(splits.test_images, splits.test_labels, batch_size=1000, stats=stats),
                    loss, precision, num_classes=splits.num_classes)
    best, tested = summary.best, summary.test
    assert (val.top1, val.top5) == pytest.approx((best.val_acc, best.val_top5), abs=1e-12)
    assert val.loss == pytest.approx(best.val_loss, rel=1e-6)
    # The test figure is the best-on-validation checkpoint's, evaluated once at the end.
    assert (test.top1, test.top5, test.images) == pytest.approx((tested.acc, tested.top5, tested.images), abs=1e-12)
    assert test.loss == pytest.approx(tested.loss, rel=1e-6)
    sizes = {part: len(getattr(splits, f"{part}_labels")) for part in ("train", "val", "test")}
    assert sizes == {"train": 500, "val": 100, "test": 200}  # tiny_config: 600 train images, 100 held out
    assert {part: summary.dataset[part] for part in sizes} == sizes
    assert f"epoch {summary.best.epoch}" in summary.test.checkpoint
    assert json.load(open(f"{run}/confusion.json"))["matrix"] == test.confusion.tolist()


def test_a_run_that_fails_keeps_its_files_and_resumes_exactly(tiny_config):
    config = with_overrides(tiny_config, "train.epochs=3", "data.augment=[{name: random_crop, padding: 2}, {name: flip_lr}]",
                            "schedule.name=cosine")
    straight = fit(config, progress=QUIET)

    killed = RunDir(fit_killed_after(config, 2))
    assert killed.summary().status == "failed" and killed.summary().epochs_run == 2
    assert killed.checkpoints.latest() == 2
    resumed = fit(config, progress=QUIET, resume=str(killed.path))
    a = [r.without_times() for r in RunDir(straight.run_dir).metrics()]
    assert a == [r.without_times() for r in killed.metrics()]  # every RNG, the optimizer and the schedule restored
    assert resumed.test == straight.test


def test_a_resumed_run_keeps_its_best_checkpoint(tiny_config):
    # lr 1e-9 leaves float32 weights as they are, so val_acc ties every epoch and epoch 1 stays the best.
    config = with_overrides(tiny_config, "train.epochs=3", "optim.lr=1.0e-9", "optim.momentum=0.0")

    killed = RunDir(fit_killed_after(config, 2))
    assert killed.checkpoints.epochs() == [1, 2]
    resumed = fit(config, progress=QUIET, resume=str(killed.path))
    assert resumed.best.epoch == 1 and killed.checkpoints.epochs() == [1, 3]
    assert resumed.test.checkpoint == "best (epoch 1, by val_acc)"


def test_early_stopping_is_reported_and_final(tiny_config):
    config = with_overrides(tiny_config, "train.epochs=6", "optim.lr=1.0e-9", "optim.momentum=0.0",
                            "train.early_stopping.patience=2")
    stopped = fit(config, progress=QUIET)
    assert stopped.status == "early_stopped" and stopped.epochs_run == 3
    # Stopping was the run's decision, not a kill: like a completed run, it is not resumed.
    with pytest.raises(CnnlabError, match="has early stopped after 3 epochs; there is nothing to resume"):
        fit(config, progress=QUIET, resume=stopped.run_dir)


@pytest.mark.parametrize("loss, initial", [("bce", math.log(2)), ("hinge", 1.0)])
def test_binary_losses_train_one_logit(tiny_config, loss, initial):
    summary = fit(with_overrides(tiny_config, f"loss.name={loss}", "data.classes=[3, 7]", "train.epochs=5",
                                 "data.options={shape: [1, 16, 16], train_size: 3000, test_size: 200}"),
                  progress=QUIET)
    model = restore_model(summary.run_dir)
    assert model.get_submodule(head_name(model)).out_features == 1
    assert summary.expected_initial_loss == pytest.approx(initial)
    assert summary.dataset["classes"] == 2 and summary.test.top5 is None
    assert summary.best.val_acc > 0.9  # two synthetic classes separate easily


def test_l1_penalty_adds_lr_times_l1_times_sign_to_each_weight_step():
    from cnnlab.engine.losses import build_loss
    from cnnlab.engine.loop import train_one_epoch
    from cnnlab.engine.precision import resolve_precision
    from cnnlab.models import build_model

    x, y = torch.randn(8, 1, 16, 16), torch.randint(0, 10, (8,))
    after = {}
    for l1 in (0.0, 0.01):
        torch.manual_seed(0)
        model = build_model("simple_nn", in_chans=1, input_size=(16, 16))
        start = {k: v.clone() for k, v in model.named_parameters()}
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        train_one_epoch(model, [(x, y)], build_loss("cross_entropy", 10), optimizer, None,
                        resolve_precision("cpu", "fp32", "false"), num_classes=10, l1=l1)
        after[l1] = dict(model.named_parameters())
    for name, w0 in start.items():
        shift = after[0.01][name].detach() - after[0.0][name].detach()
        expected = -0.1 * 0.01 * torch.sign(w0) if w0.dim() > 1 else torch.zeros_like(w0)  # biases: no L1
        torch.testing.assert_close(shift, expected, rtol=0, atol=1e-6)


def test_threads_option_is_applied(tiny_config):
    before = torch.get_num_threads()
    try:
        summary = fit(with_overrides(tiny_config, "train.threads=1", "train.epochs=1"), progress=QUIET)
        assert summary.device["threads"] == 1
    finally:
        torch.set_num_threads(before)


def test_two_identical_runs_write_byte_identical_checkpoints(tiny_config):
    config = with_overrides(tiny_config, "optim.name=adam", "optim.momentum=null", "optim.lr=0.003",
                            "model.options={dropout: 0.3}")
    one, two = (RunDir(fit(config, progress=QUIET).run_dir).checkpoints for _ in range(2))
    assert one.epochs() == two.epochs() and one.epochs()
    for epoch in one.epochs():
        assert one.path(epoch).read_bytes() == two.path(epoch).read_bytes()


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                        (0o002, 0o664, 0o775)])
def test_run_files_follow_the_umask(tiny_config, umask, file_mode, dir_mode):
    old = os.umask(umask)
    try:
        run = Path(fit(with_overrides(tiny_config, "train.epochs=1"), progress=QUIET).run_dir)
        write_report(run)
    finally:
        os.umask(old)
    files = [p for p in run.rglob("*")]
    assert {p.name for p in files} >= {"report.html", "summary.json", "epoch-0001.safetensors", "checkpoints"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == (dir_mode if path.is_dir() else file_mode), path
    assert stat.S_IMODE(run.stat().st_mode) == dir_mode


def test_normalization_is_fit_on_the_train_split_alone(tiny_config):
    from cnnlab.data.datasets import load_dataset

    config = with_overrides(tiny_config, "train.epochs=1", "data.val_size=300")
    run = RunDir(fit(config, progress=QUIET).run_dir)
    record = run.data_record()
    dataset = load_dataset("synthetic", **config.data.options)
    held_out = np.zeros(len(dataset.train_labels), dtype=bool)
    held_out[record.val_indices] = True
    train = dataset.train_images[~held_out] / 255.0  # (N, 1, 16, 16), numpy's own mean and std
    assert record.normalization["mean"] == pytest.approx([train.mean()], rel=1e-12)
    assert record.normalization["std"] == pytest.approx([train.std()], rel=1e-12)
    everything = dataset.train_images / 255.0
    assert abs(everything.mean() - train.mean()) > 1e-4  # so the check can tell train alone from train + val


def test_the_test_split_is_evaluated_with_the_best_checkpoint_not_the_last(tiny_config, tmp_path):
    """final_test loads the best epoch's weights, whatever the model holds when training ends."""
    session = setup(tiny_config)
    best = {k: v.clone() for k, v in session.model.state_dict().items()}
    torch.manual_seed(123)
    last = build_model("simple_nn", in_chans=1, input_size=(16, 16)).state_dict()
    run = RunDir.create(tmp_path, "t")
    run.checkpoints.commit(1, best, {}, {"best_epoch": 1}, keep={1})
    run.checkpoints.commit(2, last, {}, {"best_epoch": 1}, keep={1})
    session.monitor.best, session.monitor.best_epoch = 0.5, 1
    session.model.load_state_dict(last)  # where training left the model
    result = final_test(session, run, QUIET)

    session.model.load_state_dict(best)
    expected = evaluate(session.model, session.loaders["test"], session.loss_fn, session.precision, num_classes=10)
    assert (result.loss, result.acc, result.top5, result.images) == (expected.loss, expected.top1, expected.top5, 200)
    assert result.checkpoint == "best (epoch 1, by val_acc)"
    assert run.confusion().matrix == expected.confusion.tolist()
