"""End-to-end runs on small synthetic data: the run directory, resume, stopping, test discipline."""

import json
import math
from pathlib import Path

import pytest
import torch

from cnnlab.engine.finetune import head_name
from cnnlab.engine.fit import fit
from cnnlab.engine.loop import evaluate
from cnnlab.engine.progress import Progress
from cnnlab.run.restore import restore_model, restore_splits
from tests.conftest import with_overrides

QUIET = Progress(quiet=True)
RUN_FILES = ["config.yaml", "data.json", "metrics.jsonl", "summary.json", "confusion.json", "model.txt",
             "curves.png", "confusion.png", "report.html", "checkpoints/best.safetensors",
             "checkpoints/last.safetensors", "checkpoints/last_state.pt"]


def test_a_run_writes_every_file(tiny_config):
    summary = fit(tiny_config, progress=QUIET)
    run = summary["run_dir"]
    for name in RUN_FILES:
        assert Path(run, name).is_file(), name
    rows = [json.loads(line) for line in open(f"{run}/metrics.jsonl")]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert summary["status"] == "completed" and summary["epochs_run"] == 2
    assert summary["model"]["parameters"] == sum(p.numel() for p in restore_model(run).parameters())
    # The labs' sanity check: an untrained 10-class net starts near ln(10) = 2.30.
    assert summary["expected_initial_loss"] == pytest.approx(math.log(10))
    assert abs(summary["first_batch_loss"] - math.log(10)) < 0.25
    assert {"versions", "git", "device_name"} <= set(summary["environment"])


def test_run_folder_alone_rebuilds_model_split_and_normalization(tiny_config):
    summary = fit(tiny_config, progress=QUIET)
    run = summary["run_dir"]
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
    assert val.top1 == pytest.approx(summary["best"]["val_acc"], abs=1e-12)
    # The test figure is the best-on-validation checkpoint's, evaluated once at the end.
    assert test.top1 == pytest.approx(summary["test"]["acc"], abs=1e-12)
    assert f"epoch {summary['best']['epoch']}" in summary["test"]["checkpoint"]
    assert json.load(open(f"{run}/confusion.json"))["matrix"] == test.confusion.tolist()


class Kill(Exception):
    pass


def test_killed_run_keeps_its_files_and_resumes_exactly(tiny_config):
    config = with_overrides(tiny_config, "train.epochs=3", "data.augment=[{name: random_crop, padding: 2}, {name: flip_lr}]",
                            "schedule.name=cosine")
    straight = fit(config, progress=QUIET)

    def kill_after_2(row):
        if row["epoch"] == 2:
            raise Kill()

    with pytest.raises(Kill):
        fit(config, progress=QUIET, callbacks=[kill_after_2])
    killed = sorted(Path(config.output_dir).iterdir())[-1]
    summary = json.load(open(killed / "summary.json"))
    assert summary["status"].startswith("failed") and summary["epochs_run"] == 2
    assert (killed / "checkpoints/last.safetensors").is_file()
    resumed = fit(config, progress=QUIET, resume=str(killed))
    drop = ("epoch_time", "val_time", "images_per_s")
    a = [{k: v for k, v in r.items() if k not in drop} for r in map(json.loads, open(f"{straight['run_dir']}/metrics.jsonl"))]
    b = [{k: v for k, v in r.items() if k not in drop} for r in map(json.loads, open(killed / "metrics.jsonl"))]
    assert a == b  # bit-identical: every RNG, the optimizer and the schedule were restored
    assert resumed["test"]["acc"] == straight["test"]["acc"]


def test_early_stopping_and_divergence_are_reported(tiny_config):
    stopped = fit(with_overrides(tiny_config, "train.epochs=6", "optim.lr=0.0", "optim.momentum=0.0",
                                 "train.early_stopping.patience=2"), progress=QUIET)
    assert stopped["status"] == "early_stopped" and stopped["epochs_run"] == 3
    diverged = fit(with_overrides(tiny_config, "optim.lr=1.0e+12", "train.epochs=3"), progress=QUIET)
    assert diverged["status"] == "diverged"


@pytest.mark.parametrize("loss, initial", [("bce", math.log(2)), ("hinge", 1.0)])
def test_binary_losses_train_one_logit(tiny_config, loss, initial):
    summary = fit(with_overrides(tiny_config, f"loss.name={loss}", "data.classes=[3, 7]", "train.epochs=5",
                                 "data.options={shape: [1, 16, 16], train_size: 3000, test_size: 200}"),
                  progress=QUIET)
    model = restore_model(summary["run_dir"])
    assert model.get_submodule(head_name(model)).out_features == 1
    assert summary["expected_initial_loss"] == pytest.approx(initial)
    assert summary["dataset"]["classes"] == 2 and summary["test"]["top5"] is None
    assert summary["best"]["val_acc"] > 0.9  # two synthetic classes separate easily


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
        assert summary["device"]["threads"] == 1
    finally:
        torch.set_num_threads(before)
