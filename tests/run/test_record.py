"""The run record: typed round trips, run folders of older cnnlab still readable, clear errors."""

import json

import pytest
import torch
from safetensors.torch import save as st_save

from cnnlab.config import config_to_dict, dump_yaml
from cnnlab.errors import CnnlabError
from cnnlab.report import write_report
from cnnlab.run import RunDir
from cnnlab.run.record import MetricsRow, Summary, from_dict
from cnnlab.run.restore import restore_model

# Files as cnnlab wrote them before records had versions (copied from a run of commit 225ffed,
# `cnnlab train recipes/quick_test.yaml train.epochs=2`, val indices and rows shortened).
LEGACY_DATA = {"dataset": "synthetic", "options": {}, "classes": [f"class{k}" for k in range(10)], "class_ids": None,
               "image_shape": [1, 28, 28], "sizes": {"train": 1800, "val": 200, "test": 500}, "split_seed": 0,
               "val_indices": [16, 17, 22], "normalization": {"mean": [0.5236], "std": [0.3489]}, "num_outputs": 10}
LEGACY_ROW = {"epoch": 1, "lr": 0.05, "train_loss": 1.85, "train_acc": 0.44, "train_top5": 0.81, "val_loss": 0.0021,
              "val_acc": 1.0, "val_top5": 1.0, "epoch_time": 1.49, "val_time": 0.075, "images_per_s": 1211.08}
LEGACY_SUMMARY = {"status": "failed: out of memory", "run_dir": "runs/quick-20261124-054220", "name": "quick",
                  "seed": 0, "dataset": {"name": "synthetic", "classes": 10}, "model": {"name": "simple_nn"},
                  "epochs_run": 1, "monitor": "val_acc", "best": LEGACY_ROW, "final": LEGACY_ROW, "test": None,
                  "first_batch_loss": 2.31, "expected_initial_loss": 2.3026,
                  "time": {"train_wall_s": 3.1}, "device": {"type": "cpu", "precision": "fp32"},
                  "environment": {"python": "3.11.7"}, "config": {"name": "quick"}}
LEGACY_SCRATCH_CONFUSION = {"split": "test", "classes": ["0", "1"], "matrix": [[3, 1], [0, 4]]}


@pytest.fixture
def legacy_run(tmp_path, tiny_config):
    """A run folder in the schema-0 layout: best/last.safetensors and a pickled last_state.pt."""
    from cnnlab.models import build_model

    run = tmp_path / "quick-20261124-054220"
    (run / "checkpoints").mkdir(parents=True)
    config = config_to_dict(tiny_config)
    config["model"]["name"], config["data"]["options"] = "simple_nn", {"shape": [1, 28, 28]}
    (run / "config.yaml").write_text(json.dumps(config))
    (run / "data.json").write_text(json.dumps(LEGACY_DATA))
    (run / "metrics.jsonl").write_text(json.dumps(LEGACY_ROW) + "\n")
    (run / "summary.json").write_text(json.dumps(LEGACY_SUMMARY))
    (run / "confusion.json").write_text(json.dumps(LEGACY_SCRATCH_CONFUSION))
    model = build_model("simple_nn", in_chans=1, input_size=(28, 28))
    weights = {k: v.contiguous() for k, v in model.state_dict().items()}
    for name in ("best", "last"):
        (run / "checkpoints" / f"{name}.safetensors").write_bytes(st_save(weights, metadata={"epoch": "1"}))
    torch.save({"epoch": 1}, run / "checkpoints" / "last_state.pt")
    return run, model


def test_a_legacy_run_reads_reports_and_restores(legacy_run):
    path, model = legacy_run
    run = RunDir.open(path)
    summary = run.summary()
    assert (summary.status, summary.failure, summary.schema) == ("failed", "out of memory", 0)
    assert summary.best == MetricsRow(**LEGACY_ROW) and run.metrics()[0].wall_time is None
    assert run.data_record().source is None and run.data_record().num_outputs == 10
    assert run.confusion().checkpoint == "best"
    assert write_report(path).is_file()
    restored = restore_model(path)
    for a, b in zip(restored.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    assert not any(m.training for m in restored.modules())  # ready to predict: dropout off, BN statistics fixed


def test_a_legacy_run_cannot_be_resumed_and_says_why(legacy_run, tiny_config):
    from cnnlab.engine.fit import fit
    from cnnlab.engine.progress import Progress

    path, _ = legacy_run
    (path / "summary.json").unlink()  # a killed legacy run
    config = RunDir.open(path).config()
    with pytest.raises(CnnlabError, match="written by an older cnnlab .last_state.pt.; it can be reported"):
        fit(config, progress=Progress(quiet=True), resume=str(path))


def test_records_round_trip_and_refuse_newer_schemas(tmp_path, tiny_config):
    run = RunDir.create(tmp_path, "r")
    row = MetricsRow(**LEGACY_ROW, wall_time=1.6)
    run.write_metrics([row, row])
    assert run.metrics() == [row, row]
    newer = {**LEGACY_SUMMARY, "schema": 99}
    with pytest.raises(CnnlabError, match="has schema 99; this cnnlab reads up to 1: upgrade cnnlab"):
        from_dict(Summary, newer, "summary.json")
    with pytest.raises(CnnlabError, match="lacks 'status'"):
        from_dict(Summary, {k: v for k, v in LEGACY_SUMMARY.items() if k != "status"}, "summary.json")


@pytest.mark.parametrize("damage, message", [
    ("folder", "is not a cnnlab run directory (no such folder)"),
    ("empty", "is not a cnnlab run directory (no config.yaml)"),
    ("killed", "the run was killed before it started: start it again"),
    ("half", "the run was killed before it started: start it again"),  # data.json and model.txt, no config.yaml
    ("json", "summary.json is not valid JSON"),
    ("metrics", "metrics.jsonl line 2 is not JSON"),
])
def test_damaged_run_folders_are_one_clear_error(tmp_path, tiny_config, damage, message):
    path = tmp_path / "run"
    if damage != "folder":
        path.mkdir()
    if damage in ("killed", "half"):
        (path / "checkpoints").mkdir()
    if damage == "half":  # killed inside write_record, which writes config.yaml last
        (path / "data.json").write_text(json.dumps(LEGACY_DATA))
        (path / "model.txt").write_text("SimpleNN()\n")
    if damage in ("json", "metrics"):
        (path / "config.yaml").write_text(dump_yaml(tiny_config))
        (path / "summary.json").write_text("{" if damage == "json" else json.dumps(LEGACY_SUMMARY))
        (path / "metrics.jsonl").write_text(json.dumps(LEGACY_ROW) + "\n{\"epoch\": 2,\n")
    with pytest.raises(CnnlabError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        run = RunDir.open(path)
        run.summary()
        run.metrics()
    assert "\n" not in str(caught.value)
