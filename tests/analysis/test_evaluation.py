"""cnnlab eval: the metrics of a run's model from its folder alone, against what training recorded."""

import hashlib
import json
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

from cnnlab.analysis.evaluation import evaluate_run, write_evaluation
from cnnlab.cli.main import main
from cnnlab.engine.fit import fit
from cnnlab.engine.progress import Progress
from tests.conftest import with_overrides, synthetic_run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return synthetic_run(tmp_path_factory.mktemp('runs'))

def folder_state(run_dir) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def test_test_evaluation_equals_what_training_recorded_and_leaves_the_summary(tiny_run):
    summary_before = (tiny_run / "summary.json").read_text()
    evaluation, gallery = evaluate_run(tiny_run, timing=False)
    summary = json.loads(summary_before)
    confusion = json.loads((tiny_run / "confusion.json").read_text())
    # the best checkpoint on the test split is exactly what fit evaluated once at the end
    assert evaluation.images == summary["dataset"]["test"] == 200
    assert evaluation.top1 == pytest.approx(summary["test"]["acc"], abs=1e-9)
    assert evaluation.loss == pytest.approx(summary["test"]["loss"], rel=1e-5)
    assert evaluation.confusion == confusion["matrix"]
    assert evaluation.epoch == summary["best"]["epoch"]
    wrong = 200 - int(np.trace(np.array(evaluation.confusion)))
    assert len(evaluation.top_losses) == min(16, wrong) and gallery.shape == (len(evaluation.top_losses), 1, 16, 16)
    losses = [t["loss"] for t in evaluation.top_losses]
    assert losses == sorted(losses, reverse=True) and all(t["true"] != t["predicted"] for t in evaluation.top_losses)
    path = write_evaluation(tiny_run, evaluation)
    assert path.name == "eval-test.json" and (tiny_run / "summary.json").read_text() == summary_before
    assert "separate evaluation" in json.loads(path.read_text())["note"]


def test_validation_split_matches_the_best_epoch_row(tiny_run):
    evaluation, _ = evaluate_run(tiny_run, split="val", timing=False)
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert evaluation.images == 100
    assert evaluation.top1 == pytest.approx(summary["best"]["val_acc"], abs=1e-9)


def test_eval_command_prints_tables_writes_json_and_figures(tiny_run, capsys):
    assert main(["eval", str(tiny_run), "--split", "val", "--checkpoint", "last"]) == 0
    out = capsys.readouterr().out
    assert "val set, 100 images, last checkpoint (epoch 2)" in out
    assert "macro avg" in out and "weighted avg" in out and "confusion matrix" in out
    assert "batch 1 latency median" in out and "images/s" in out
    record = json.loads((tiny_run / "eval-val.json").read_text())
    assert record["timing"]["latency"]["p95_ms"] >= record["timing"]["latency"]["median_ms"] > 0
    assert record["timing"]["throughput"]["batch"] == 256
    for name in ("eval-val-confusion.png", "eval-val-top-losses.png"):
        assert (tiny_run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_binary_run_gets_roc_auc_and_pr_curve(tmp_path, tiny_config):
    from sklearn.metrics import average_precision_score, roc_auc_score

    config = with_overrides(tiny_config, "data.options={shape: [1, 16, 16], num_classes: 2, train_size: 400, "
                            "test_size: 200, noise: 1.5}", "loss.name=bce")
    run_dir = Path(fit(config, progress=Progress(quiet=True)).run_dir)
    evaluation, _ = evaluate_run(run_dir, timing=False)
    b = evaluation.binary
    assert b is not None and 0.5 < b["roc_auc"] <= 1 and b["pr_curve"]["recall"][-1] == 0
    assert evaluation.top5 is None
    # the same scores through scikit-learn: rebuild them from the model, independently of cnnlab.analysis
    import torch

    from cnnlab.run.restore import restore_model, restore_splits

    model = restore_model(run_dir)
    splits, stats = restore_splits(run_dir)
    with torch.inference_mode():
        scores = torch.sigmoid(model(stats.normalize(torch.as_tensor(splits.test_images)))[:, 0]).numpy()
    assert b["roc_auc"] == pytest.approx(roc_auc_score(splits.test_labels, scores), abs=1e-6)
    assert b["average_precision"] == pytest.approx(average_precision_score(splits.test_labels, scores), abs=1e-6)


@pytest.mark.parametrize("words, message", [
    (["--split", "train"], "unknown split 'train' (valid: test, val)"),
    ([], "is not a cnnlab run directory"),
    (["--checkpoint", "best"], "not a readable safetensors file"),
])
def test_bad_input_is_one_line_and_leaves_the_folder(tmp_path, tiny_config, capsys, words, message):
    if message.startswith("unknown split"):
        run_dir = Path(fit(with_overrides(tiny_config, "train.epochs=1"), progress=Progress(quiet=True)).run_dir)
    elif message == "is not a cnnlab run directory":
        run_dir = tmp_path / "not-a-run"
        run_dir.mkdir()
    else:
        run_dir = Path(fit(with_overrides(tiny_config, "train.epochs=1"), progress=Progress(quiet=True)).run_dir)
        checkpoint = next((run_dir / "checkpoints").glob("*.safetensors"))
        checkpoint.write_bytes(checkpoint.read_bytes()[:100])  # truncated
    before = folder_state(run_dir)
    assert main(["eval", str(run_dir), "--no-timing", *words]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cnnlab: error:") and message in err and "\n" not in err
    assert folder_state(run_dir) == before


def test_eval_on_fashion_mnist_in_a_fresh_process_matches_training(fashion_dir, tmp_path):
    """Real data: a 1-epoch simple_nn run, evaluated by the command in a fresh process (fp32: in bf16 the
    training process's test figure and a fresh one's can differ by rounding, 2 images in 10,000 here)."""
    from cnnlab.config import load_recipe

    config = load_recipe(None, [f"output_dir={tmp_path}", "data.name=fashion_mnist", "model.name=simple_nn",
                                "train.epochs=1", "data.batch_size=256", "train.precision=fp32"])
    run_dir = Path(fit(config, progress=Progress(quiet=True)).run_dir)
    out = subprocess.run([sys.executable, "-m", "cnnlab", "eval", str(run_dir), "--json", "--no-timing"],
                         capture_output=True, text=True, check=True).stdout
    record = json.loads(out)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert record["images"] == 10_000 and record["top1"] == pytest.approx(summary["test"]["acc"], abs=1e-9)
    assert record["top5"] > record["top1"] > 0.2
