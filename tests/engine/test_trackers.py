"""TensorBoard and MLflow (log.tensorboard, log.mlflow): what a run logs is read back through each
tracker's own API (TensorBoard's EventAccumulator, MLflow's client) and compared with the run
folder's metrics.jsonl, summary.json and config.yaml, read here with json and yaml alone."""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from cnnlab.config import load_recipe
from cnnlab.engine.fit import fit
from cnnlab.engine.progress import Progress
from cnnlab.errors import CnnlabError
from tests.conftest import fit_killed_after, free_port


def optional(module: str):
    """A module of the optional extras: the tests skip without it, except under CI=true, where it must be there."""
    return importlib.import_module(module) if os.environ.get("CI") == "true" else pytest.importorskip(module)


mlflow_tracking = optional("mlflow.tracking")
event_accumulator = optional("tensorboard.backend.event_processing.event_accumulator")
api_pb2 = optional("tensorboard.plugins.hparams.api_pb2")
plugin_data_pb2 = optional("tensorboard.plugins.hparams.plugin_data_pb2")

TINY = [  # seconds of training: synthetic 1x16x16 images, simple_nn, fixed settings (nothing measured)
    "name=tiny", "data.name=synthetic", "data.options={shape: [1, 16, 16], train_size: 600, test_size: 200, noise: 0.3}",
    "data.val_size=100", "data.batch_size=64", "model.name=simple_nn", "optim.lr=0.05", "optim.momentum=0.9",
    "train.epochs=2", "train.precision=fp32", "train.channels_last=false", "train.threads=1",
]


def run_folders(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if (p / "config.yaml").is_file()) if out.is_dir() else []


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def numeric(row: dict) -> dict[str, float]:
    return {k: v for k, v in row.items() if k != "epoch" and v is not None}


def scalars(run: Path) -> event_accumulator.EventAccumulator:
    events = event_accumulator.EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    return events.Reload()


def mlflow_run(uri: str, experiment: str, run_name: str):
    """The one MLflow run named ``run_name``, found by search (not through cnnlab's trackers.json)."""
    client = mlflow_tracking.MlflowClient(tracking_uri=uri)
    found = client.search_runs([client.get_experiment_by_name(experiment).experiment_id],
                               filter_string=f"attributes.run_name = '{run_name}'")
    assert len(found) == 1
    return client, found[0]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """One run logged to both trackers; ``log.mlflow: true`` puts the store at <output_dir>/mlflow.db."""
    out = tmp_path_factory.mktemp("tracked") / "runs"
    config = load_recipe(None, [*TINY, f"output_dir={out}", "log.tensorboard=true", "log.mlflow=true"])
    summary = fit(config, progress=Progress(quiet=True))
    return Path(summary.run_dir), f"sqlite:///{out / 'mlflow.db'}"


# --- TensorBoard --------------------------------------------------------------------------------

def test_tensorboard_scalars_are_the_metrics_rows(tracked):
    run, _ = tracked
    rows, events = jsonl(run / "metrics.jsonl"), scalars(run)
    assert [r["epoch"] for r in rows] == [1, 2]
    for key in numeric(rows[0]):
        logged = events.Scalars(key)
        assert [e.step for e in logged] == [r["epoch"] for r in rows], key
        assert [e.value for e in logged] == pytest.approx([r[key] for r in rows], rel=1e-6), key  # float32 there
    test = json.loads((run / "summary.json").read_text())["test"]
    assert events.Scalars("test_acc")[-1].value == pytest.approx(test["acc"], rel=1e-6)


def test_tensorboard_hparams_hold_the_config_and_how_the_run_ended(tracked):
    run, _ = tracked
    content = scalars(run).PluginTagToContent("hparams")
    data = {tag: plugin_data_pb2.HParamsPluginData.FromString(raw) for tag, raw in content.items()}
    config = yaml.safe_load((run / "config.yaml").read_text())
    started = data["_hparams_/session_start_info"].session_start_info.hparams
    assert started["optim.lr"].number_value == config["optim"]["lr"]
    assert started["model.name"].string_value == config["model"]["name"]
    assert data["_hparams_/session_end_info"].session_end_info.status == api_pb2.STATUS_SUCCESS
    metrics = {m.name.tag for m in data["_hparams_/experiment"].experiment.metric_infos}
    assert {"test_acc", "test_loss", "best_val_acc"} <= metrics


# --- MLflow ---------------------------------------------------------------------------------------

def leaves(node: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in node.items():
        if isinstance(value, dict) and value:
            out.update(leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_mlflow_run_holds_the_config_as_params_and_the_outcome(tracked):
    run, uri = tracked
    _, found = mlflow_run(uri, "tiny", run.name)  # experiment: the run's name; MLflow run: the folder's
    config = leaves(yaml.safe_load((run / "config.yaml").read_text()))
    assert found.data.params.keys() == config.keys()
    for key, value in config.items():  # each param reads back, as YAML, to the config's value
        assert yaml.safe_load(found.data.params[key]) == value, key
    summary = json.loads((run / "summary.json").read_text())
    assert found.info.status == "FINISHED" and found.data.tags["cnnlab.status"] == summary["status"] == "completed"
    assert found.data.metrics["test_acc"] == summary["test"]["acc"]
    assert found.data.metrics["best_val_acc"] == summary["best"]["val_acc"]


def test_mlflow_metric_history_is_metrics_jsonl(tracked):
    run, uri = tracked
    client, found = mlflow_run(uri, "tiny", run.name)
    rows = jsonl(run / "metrics.jsonl")
    for key in numeric(rows[0]):
        history = sorted(client.get_metric_history(found.info.run_id, key), key=lambda m: m.step)
        assert [(m.step, m.value) for m in history] == [(r["epoch"], r[key]) for r in rows], key


def test_mlflow_artifacts_are_the_record_files_and_then_the_report(tracked, tmp_path):
    from cnnlab.engine.trackers import log_artifacts
    from cnnlab.report import write_report

    run, uri = tracked
    client, found = mlflow_run(uri, "tiny", run.name)
    names = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"config.yaml", "metrics.jsonl", "summary.json", "confusion.json"} <= names
    report = write_report(run)  # as cnnlab train does after fit; then the report goes to the same MLflow run
    assert {p.name for p in log_artifacts(run)} == {"report.html", "curves.png", "confusion.png"}
    copy = client.download_artifacts(found.info.run_id, "report.html", str(tmp_path))
    assert Path(copy).read_bytes() == report.read_bytes()
    assert Path(client.download_artifacts(found.info.run_id, "summary.json", str(tmp_path))).read_bytes() == \
        (run / "summary.json").read_bytes()


# --- resume: the same MLflow run, TensorBoard rewritten from the rows -----------------------------

def test_a_resumed_run_continues_its_mlflow_run_and_its_event_files(tracked, tmp_path):
    _, uri = tracked  # the same database, given as a URI this time
    config = load_recipe(None, [*TINY, "name=resumed", f"output_dir={tmp_path}", "train.epochs=3",
                                "log.tensorboard=true", f"log.mlflow={uri}"])
    killed = fit_killed_after(config, epoch=1)
    client, found = mlflow_run(uri, "resumed", killed.name)
    assert found.info.status == "FAILED" and found.data.tags["cnnlab.status"] == "failed"

    fit(config, progress=Progress(quiet=True), resume=str(killed))
    client, again = mlflow_run(uri, "resumed", killed.name)  # still one MLflow run of that name
    assert again.info.run_id == found.info.run_id and again.info.status == "FINISHED"
    rows, events = jsonl(killed / "metrics.jsonl"), scalars(killed)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    for key in ("val_loss", "train_acc", "lr"):
        history = sorted(client.get_metric_history(found.info.run_id, key), key=lambda m: m.step)
        assert [(m.step, m.value) for m in history] == [(r["epoch"], r[key]) for r in rows], key
        # the killed attempt's events are purged, so each epoch is there once
        assert [(e.step, e.value) for e in events.Scalars(key)] == \
            [(r["epoch"], pytest.approx(r[key], rel=1e-6)) for r in rows], key


def test_a_diverged_run_ends_failed_in_both_trackers(tracked, tmp_path):
    _, uri = tracked
    config = load_recipe(None, [*TINY, "name=diverged", f"output_dir={tmp_path}", "optim.lr=1.0e+6",
                                "log.tensorboard=true", f"log.mlflow={uri}"])
    summary = fit(config, progress=Progress(quiet=True))
    assert summary.status == "diverged"
    _, found = mlflow_run(uri, "diverged", Path(summary.run_dir).name)
    assert found.info.status == "FAILED" and found.data.tags["cnnlab.status"] == "diverged"
    end = scalars(Path(summary.run_dir)).PluginTagToContent("hparams")["_hparams_/session_end_info"]
    assert plugin_data_pb2.HParamsPluginData.FromString(end).session_end_info.status == api_pb2.STATUS_FAILURE


# --- failures: before the run, one line and no run folder; during it, a warning -------------------

@pytest.mark.parametrize("uri, message", [
    ("nosuch://x", "log.mlflow: MLflow has no tracking store for 'nosuch:' URIs (nosuch://x)"),
    ("http://127.0.0.1:{port}", "log.mlflow: cannot open the MLflow tracking store http://127.0.0.1:{port}: "),
])
def test_a_store_that_does_not_open_is_one_line_before_any_run_folder(tmp_path, uri, message):
    port = free_port()
    config = load_recipe(None, [*TINY, f"output_dir={tmp_path / 'runs'}", f"log.mlflow={uri.format(port=port)}"])
    with pytest.raises(CnnlabError) as err:
        fit(config, progress=Progress(quiet=True))
    assert str(err.value).startswith(message.format(port=port)) and "\n" not in str(err.value)
    assert not (tmp_path / "runs").exists()  # nothing was built, no folder made


@pytest.mark.parametrize("key, modules", [
    ("tensorboard", ["tensorboard", "torch.utils.tensorboard"]),
    ("mlflow", ["mlflow", "mlflow.tracking"]),
])
def test_a_missing_package_is_one_line_that_says_what_to_install(tmp_path, monkeypatch, key, modules):
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # import then raises ImportError, as when not installed
    config = load_recipe(None, [*TINY, f"output_dir={tmp_path / 'runs'}", f"log.{key}=true"])
    with pytest.raises(CnnlabError) as err:
        fit(config, progress=Progress(quiet=True))
    assert str(err.value) == f"log.{key} needs the {key} package: pip install {key}"
    assert not (tmp_path / "runs").exists()


def test_a_tracker_that_fails_during_training_is_dropped_and_the_run_goes_on(tracked, tmp_path, monkeypatch):
    from cnnlab.engine.trackers import TensorBoardLog

    def full_disk(self, row):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(TensorBoardLog, "epoch", full_disk)
    _, uri = tracked
    config = load_recipe(None, [*TINY, "name=full", f"output_dir={tmp_path}", "log.tensorboard=true",
                                f"log.mlflow={uri}"])
    lines = io.StringIO()
    summary = fit(config, progress=Progress(stream=lines, live=False))
    assert summary.status == "completed"
    warnings = [line for line in lines.getvalue().splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: TensorBoard logging failed at epoch 1 ([Errno 28] No space left on device); it is "
                        "off for the rest of this run, and the run folder keeps every record"]
    client, found = mlflow_run(uri, "full", Path(summary.run_dir).name)  # the other tracker went on
    assert [m.step for m in client.get_metric_history(found.info.run_id, "val_acc")] == [1, 2]
    assert found.info.status == "FINISHED"


# --- the log section of the schema ----------------------------------------------------------------

@pytest.mark.parametrize("word, value", [
    ("log.mlflow=true", True), ("log.mlflow=false", False), ("log.mlflow=null", None),
    ("log.mlflow=sqlite:///runs/mlflow.db", "sqlite:///runs/mlflow.db"),
    ("log.mlflow=http://localhost:5000", "http://localhost:5000"), ("log.mlflow=databricks", "databricks"),
])
def test_log_mlflow_takes_true_or_a_tracking_uri(word, value):
    assert load_recipe(None, [word]).log.mlflow == value


@pytest.mark.parametrize("word, message", [
    ("log.mlflow=mlruns", "'log.mlflow' must be true or a tracking URI such as sqlite:///runs/mlflow.db or "
                          "http://localhost:5000, got 'mlruns'"),
    ("log.mlflow='true'", "got 'true'; write true without quotes"),
    ("log.mlflow=5", "'log.mlflow' does not take 5"),
    ("log.tensorboard=sometimes", "'log.tensorboard' must be true or false, got 'sometimes'"),
    ("log.mlfow=true", "unknown key 'log.mlfow' in override 'log.mlfow=true'; did you mean 'log.mlflow'?"),
])
def test_a_bad_log_value_is_one_line(word, message):
    with pytest.raises(CnnlabError) as err:
        load_recipe(None, [word])
    assert str(err.value).endswith(message) and "\n" not in str(err.value)


def test_a_relative_sqlite_path_becomes_absolute_so_a_resume_finds_it(tmp_path, monkeypatch):
    from sqlalchemy.engine import make_url

    from cnnlab.engine.trackers import tracking_uri

    monkeypatch.chdir(tmp_path)
    assert make_url(tracking_uri("sqlite:///runs/m.db", "runs")).database == str(tmp_path / "runs" / "m.db")
    assert make_url(tracking_uri(True, "out")).database == str(tmp_path / "out" / "mlflow.db")
    assert tracking_uri("http://localhost:5000", "runs") == "http://localhost:5000"
