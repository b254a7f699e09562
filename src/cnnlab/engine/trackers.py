"""Trackers people already use, beside the run folder: TensorBoard event files and MLflow.

``log.tensorboard: true`` writes ``<run folder>/tensorboard/``; ``log.mlflow: URI`` logs to an
MLflow tracking store (``true``: ``sqlite:///<output_dir>/mlflow.db``). Each gets what the run
folder holds: the resolved config as params, every committed epoch's ``MetricsRow`` at
step = epoch (under the row's own field names), and at the end the summary's figures and
status (and, for MLflow, the record files as artifacts). The run folder stays the record: a
tracker that fails during training is reported in one line and dropped, and the run goes on.

``fit`` calls ``connect`` before anything is built (a missing package or a store that cannot
be opened is one line, before any run folder exists), ``start`` once the run folder exists,
``epoch`` after each committed epoch, ``finish`` with the summary however the run ended, and
``close`` always. A resumed run continues its MLflow run (the id is kept in
``<run folder>/trackers.json``) and rewrites the TensorBoard scalars from its metrics rows,
after a purge from step 0 that hides what the killed attempt wrote. Only rank 0 logs.

The packages are imported only when asked for: mlflow alone takes seconds to import.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from cnnlab.config.schema import LogConfig
from cnnlab.errors import CnnlabError, first_line
from cnnlab.run import MetricsRow, RunDir, Summary

Warn = Callable[[str], None]
Params = dict[str, int | float | str]

RECORD_FILES = ("config.yaml", "metrics.jsonl", "summary.json", "confusion.json")  # logged by finish
REPORT_FILES = ("report.html", "curves.png", "confusion.png")  # written after fit, by cnnlab.report
TRACKERS_FILE = "trackers.json"  # {"mlflow": {"tracking_uri", "experiment_id", "run_id"}}: what a resume continues
MLFLOW_STATUS = {"completed": "FINISHED", "early_stopped": "FINISHED", "diverged": "FAILED", "failed": "FAILED",
                 "interrupted": "KILLED"}
TENSORBOARD_STATUS = {"completed": "STATUS_SUCCESS", "early_stopped": "STATUS_SUCCESS", "diverged": "STATUS_FAILURE",
                      "failed": "STATUS_FAILURE", "interrupted": "STATUS_ABORTED"}
MLFLOW_BATCH = 100  # MLflow's log_batch takes at most 100 params at once
MLFLOW_VALUE = 6000  # ... and params of at most 6000 characters


# --- what is logged: plain data from the run's records ------------------------------------------

def flat_params(config: Mapping[str, Any], prefix: str = "") -> Params:
    """The resolved config (``config_to_dict``) as flat params: ``{"optim.lr": 0.05, "data.augment":
    "[]", "finetune.from": "null"}``. Numbers stay numbers; anything else is its JSON text, which
    reads as the YAML of an override (true, null, [1, 16, 16])."""
    out: Params = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flat_params(value, f"{name}."))
        elif (isinstance(value, (int, float)) and not isinstance(value, bool)) or isinstance(value, str):
            out[name] = value
        else:
            out[name] = json.dumps(value, default=str)
    return out


def row_metrics(row: MetricsRow) -> dict[str, float]:
    """Every numeric field of a metrics row but the epoch, which is the step: lr, train_loss, val_acc, times."""
    return {k: float(v) for k, v in dataclasses.asdict(row).items()
            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)}


def final_metrics(summary: Summary) -> dict[str, float]:
    """The figures a run ends with: the one test result, the best epoch and its monitored value, the time."""
    out: dict[str, float] = {}
    if summary.test is not None:
        out.update(test_loss=summary.test.loss, test_acc=summary.test.acc)
        if summary.test.top5 is not None:
            out["test_top5"] = summary.test.top5
    if summary.best is not None:
        out["best_epoch"] = summary.best.epoch
        if (best := getattr(summary.best, summary.monitor, None)) is not None:
            out[f"best_{summary.monitor}"] = best
    out["train_wall_s"] = summary.time.get("train_wall_s") or 0.0
    return {k: float(v) for k, v in out.items()}


def summary_text(summary: Summary) -> str:
    """A few Markdown lines: how the run ended, its best epoch and its test result."""
    lines = [f"**{summary.status.replace('_', ' ')}** after {summary.epochs_run} epochs; run folder `{summary.run_dir}`"]
    if summary.best is not None:
        lines.append(f"best {summary.monitor} {getattr(summary.best, summary.monitor)} at epoch {summary.best.epoch}")
    if summary.test is not None:
        lines.append(f"test acc {summary.test.acc:.4f}, loss {summary.test.loss:.4f} ({summary.test.checkpoint})")
    if summary.divergence is not None:
        lines.append(f"diverged: {summary.divergence.describe()}")
    if summary.failure:
        lines.append(f"failure: {summary.failure}")
    return "\n\n".join(lines)


def record_files(run_dir: str | Path, names: Sequence[str] = RECORD_FILES) -> list[Path]:
    """The files of ``names`` that ``run_dir`` holds."""
    return [Path(run_dir) / n for n in names if (Path(run_dir) / n).is_file()]


def _need(module: str, key: str, package: str) -> Any:
    """Import ``module`` of an optional package, or say in one line how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise CnnlabError(f"{key} needs the {package} package: pip install {package}") from err


# --- TensorBoard ----------------------------------------------------------------------------------

class TensorBoardLog:
    """Event files in ``<run folder>/tensorboard/``, read with ``tensorboard --logdir runs``."""

    name = "TensorBoard"

    def __init__(self) -> None:
        self.tensorboard = _need("torch.utils.tensorboard", "log.tensorboard", "tensorboard")
        self.summaries = _need("torch.utils.tensorboard.summary", "log.tensorboard", "tensorboard")
        self.writer = None
        self.params: Params = {}

    def start(self, run_dir: Path, params: Params, rows: Sequence[MetricsRow]) -> None:
        folder = run_dir / "tensorboard"
        # A resumed run: purge from step 0 hides all the killed attempt wrote (events lost
        # unflushed included), and the rows are written again from the run's metrics.jsonl.
        self.writer = self.tensorboard.SummaryWriter(log_dir=str(folder), purge_step=0 if folder.exists() else None)
        self.params = params
        table = "\n".join(f"| {k} | {v} |" for k, v in params.items())
        self.writer.add_text("config", f"| key | value |\n|---|---|\n{table}", global_step=0)
        for row in rows:
            self._scalars(row)
        self.writer.flush()

    def epoch(self, row: MetricsRow) -> None:
        self._scalars(row)
        self.writer.flush()  # each epoch: a killed run keeps its events up to the last committed epoch

    def _scalars(self, row: MetricsRow) -> None:
        for key, value in row_metrics(row).items():
            self.writer.add_scalar(key, value, global_step=row.epoch)

    def finish(self, summary: Summary, files: Sequence[Path]) -> None:
        """The final figures as scalars at the last epoch, the summary as text, and the config with
        those figures for TensorBoard's HPARAMS tab (which compares the runs under one logdir)."""
        step, final = summary.epochs_run, final_metrics(summary)
        for key, value in final.items():
            self.writer.add_scalar(key, value, global_step=step)
        self.writer.add_text("summary", summary_text(summary), global_step=step)
        for proto in self._hparams(final, summary.status):
            self.writer.file_writer.add_summary(proto, step)
        self.close()

    def _hparams(self, final: dict[str, float], status: str) -> tuple:
        """torch's hparams summaries (experiment, session start, session end), the end with the run's status:
        torch writes every session as a success."""
        from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

        experiment, start, end = self.summaries.hparams(self.params, final)
        content = end.value[0].metadata.plugin_data
        data = plugin_data_pb2.HParamsPluginData.FromString(content.content)
        data.session_end_info.status = api_pb2.Status.Value(TENSORBOARD_STATUS[status])
        content.content = data.SerializeToString()
        return experiment, start, end

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    release = close  # dropped after a failure: the writer's file is all it holds


# --- MLflow ----------------------------------------------------------------------------------------

def tracking_uri(setting: bool | str, output_dir: str | Path) -> str:
    """``log.mlflow`` as a URI: true is ``sqlite:///<output_dir>/mlflow.db``. A relative SQLite path is
    made absolute, so a resume from another folder finds the same database."""
    if setting is True:
        return "sqlite:///" + str(Path(output_dir).resolve() / "mlflow.db")
    if setting.startswith("sqlite:///") and not setting.startswith("sqlite:////"):
        path, sep, query = setting.removeprefix("sqlite:///").partition("?")
        if path and path != ":memory:":
            return "sqlite:///" + str(Path(path).resolve()) + sep + query
    return setting


def artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps its files: beside a SQLite database (mlartifacts/, as ``mlflow
    server`` names it), not MLflow's default ./mlruns in whatever folder the run started from; a
    server or another database decides for itself."""
    path = uri.removeprefix("sqlite:///").partition("?")[0]
    if not uri.startswith("sqlite:///") or not path or path == ":memory:":
        return None
    return (Path(path).parent / "mlartifacts").as_uri()


@contextlib.contextmanager
def _one_try() -> Iterator[None]:
    """MLflow retries an unreachable server for minutes (7 tries, backoff 2); the check at the start
    makes one try, so a wrong address is one line at once. The user's own settings win."""
    ours = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
    added = [k for k in ours if k not in os.environ]
    os.environ.update({k: ours[k] for k in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


class MlflowLog:
    """One MLflow run per cnnlab run, in the experiment ``log.experiment`` (the run's name by default),
    named after the run folder; only the explicit client is used, no global MLflow state."""

    name = "MLflow"

    def __init__(self, setting: bool | str, *, output_dir: str | Path, experiment: str,
                 previous: Mapping[str, Any] | None) -> None:
        tracking = _need("mlflow.tracking", "log.mlflow", "mlflow")
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking.registry import UnsupportedModelRegistryStoreURIException

        self.Metric, self.Param, self.RunTag = Metric, Param, RunTag
        self.uri = previous["tracking_uri"] if previous else tracking_uri(setting, output_dir)
        self.experiment = experiment
        self.run_id: str | None = previous["run_id"] if previous else None
        self.finished = False
        try:
            with _one_try():
                self.client = tracking.MlflowClient(tracking_uri=self.uri)
                found = self.client.get_experiment_by_name(experiment)
        except UnsupportedModelRegistryStoreURIException as err:  # MLflow names the registry for any store
            scheme = self.uri.partition(":")[0]
            raise CnnlabError(f"log.mlflow: MLflow has no tracking store for '{scheme}:' URIs ({self.uri}); give "
                              "sqlite:///PATH.db, http(s)://HOST:PORT, postgresql://..., or true for "
                              "sqlite:///<output_dir>/mlflow.db") from err
        except Exception as err:  # MlflowException, and database errors from SQLAlchemy
            raise CnnlabError(f"log.mlflow: cannot open the MLflow tracking store {self.uri}: {first_line(err, 240)}") from err
        if found is not None and found.lifecycle_stage == "deleted":
            raise CnnlabError(f"log.mlflow: the MLflow experiment {experiment!r} in {self.uri} is deleted; restore "
                              f"it (mlflow experiments restore --experiment-id {found.experiment_id}) or set "
                              "log.experiment to another name")
        self.experiment_id = found.experiment_id if found is not None else None

    def start(self, run_dir: Path, params: Params, rows: Sequence[MetricsRow]) -> None:
        client = self.client
        if self.run_id is None:
            self.experiment_id = self.experiment_id or self._create_experiment()
            run = client.create_run(self.experiment_id, run_name=run_dir.name,
                                    tags={"cnnlab.run_dir": str(run_dir.resolve())})
            self.run_id = run.info.run_id
            RunDir(run_dir).write_json(TRACKERS_FILE, {"mlflow": {
                "tracking_uri": self.uri, "experiment_id": self.experiment_id, "run_id": self.run_id}})
            logged = 0
        else:  # resumed: the same run, running again; the epochs it lacks are logged from the rows
            client.update_run(self.run_id, status="RUNNING")
            logged = max((m.step for m in client.get_metric_history(self.run_id, "val_loss")), default=0)
        # The same values again on a resume: MLflow refuses only a param whose value changes.
        items = [self.Param(k, str(v)[:MLFLOW_VALUE]) for k, v in params.items()]
        for i in range(0, len(items), MLFLOW_BATCH):
            client.log_batch(self.run_id, params=items[i:i + MLFLOW_BATCH])
        for row in rows:
            if row.epoch > logged:
                self.epoch(row)

    def _create_experiment(self) -> str:
        try:
            return self.client.create_experiment(self.experiment, artifact_location=artifact_location(self.uri))
        except Exception:  # another process (a sweep's worker) created it first
            found = self.client.get_experiment_by_name(self.experiment)
            if found is None:
                raise
            return found.experiment_id

    def _metrics(self, values: dict[str, float], step: int) -> list:
        stamp = int(time.time() * 1000)
        return [self.Metric(k, v, stamp, step) for k, v in values.items()]

    def epoch(self, row: MetricsRow) -> None:
        self.client.log_batch(self.run_id, metrics=self._metrics(row_metrics(row), row.epoch))

    def finish(self, summary: Summary, files: Sequence[Path]) -> None:
        """The final figures at the last epoch, the status as a tag, the record files as artifacts;
        the MLflow run ends FINISHED, FAILED (diverged, failed) or KILLED (interrupted)."""
        tags = {"cnnlab.status": summary.status, "mlflow.note.content": summary_text(summary)}  # the UI's description
        if summary.failure:
            tags["cnnlab.failure"] = summary.failure[:MLFLOW_VALUE]
        self.client.log_batch(self.run_id, metrics=self._metrics(final_metrics(summary), summary.epochs_run),
                              tags=[self.RunTag(k, v) for k, v in tags.items()])
        for file in files:
            self.client.log_artifact(self.run_id, str(file))
        self.client.set_terminated(self.run_id, MLFLOW_STATUS[summary.status])
        self.finished = True

    def close(self) -> None:
        """A run that ends without a summary (an error while writing it) ends FAILED, never FINISHED."""
        if self.run_id is not None and not self.finished:
            self.client.set_terminated(self.run_id, "FAILED")
            self.finished = True

    def release(self) -> None:
        """Nothing local to let go of; the store, which just failed, is not called again."""


# --- the trackers of one run -----------------------------------------------------------------------

class Trackers:
    """The trackers of one run (none when ``log`` turns both off, and on every rank but 0): each call
    goes to each tracker, and one that fails is reported through ``warn`` and dropped."""

    def __init__(self, trackers: Sequence[Any] = (), warn: Warn | None = None) -> None:
        self.active = list(trackers)
        self.warn = warn or (lambda message: None)

    def start(self, run_dir: str | Path, params: Params, rows: Sequence[MetricsRow] = ()) -> None:
        """After the run folder exists; ``params`` from ``flat_params``, ``rows`` those a resumed run has."""
        self._each("the start", "start", Path(run_dir), params, rows)

    def epoch(self, row: MetricsRow) -> None:
        """After the epoch of ``row`` committed its checkpoint (an epoch callback of ``fit``)."""
        self._each(f"epoch {row.epoch}", "epoch", row)

    def finish(self, summary: Summary, files: Sequence[Path]) -> None:
        self._each("the end", "finish", summary, files)

    def close(self) -> None:
        self._each("the end", "close")
        self.active = []

    def _each(self, when: str, method: str, *args: Any) -> None:
        for tracker in list(self.active):
            try:
                getattr(tracker, method)(*args)
            except Exception as err:  # the run folder is the record: a tracker is never worth a lost run
                self.active.remove(tracker)
                self.warn(f"warning: {tracker.name} logging failed at {when} ({first_line(err, 240)}); it is off for the "
                          "rest of this run, and the run folder keeps every record")
                with contextlib.suppress(Exception):
                    tracker.release()


def connect(log: LogConfig, *, output_dir: str | Path, name: str, resume: str | Path | None = None,
            warn: Warn | None = None) -> Trackers:
    """The trackers ``log`` asks for, each checked before the run starts: its package is there, and
    MLflow's store opens and answers. Raises CnnlabError in one line otherwise. ``resume``: the
    run folder whose MLflow run (in trackers.json) continues."""
    trackers: list[Any] = []
    if log.tensorboard:
        trackers.append(TensorBoardLog())
    if log.mlflow:
        previous = RunDir(resume).record(TRACKERS_FILE) if resume else None
        trackers.append(MlflowLog(log.mlflow, output_dir=output_dir, experiment=log.experiment or name,
                                  previous=(previous or {}).get("mlflow")))
    return Trackers(trackers, warn)


def log_artifacts(run_dir: str | Path, names: Sequence[str] = REPORT_FILES, warn: Warn | None = None) -> list[Path]:
    """Add files written after ``fit`` (the report and its figures) to the run's MLflow run, if it
    has one (trackers.json); returns the files logged. A failure is a warning: the files stay in
    the run folder."""
    record = RunDir(run_dir).record(TRACKERS_FILE) or {}
    files = record_files(run_dir, names)
    if "mlflow" not in record or not files:
        return []
    try:
        tracking = _need("mlflow.tracking", "log.mlflow", "mlflow")
        client = tracking.MlflowClient(tracking_uri=record["mlflow"]["tracking_uri"])
        for file in files:
            client.log_artifact(record["mlflow"]["run_id"], str(file))
    except Exception as err:
        (warn or (lambda message: None))(f"warning: MLflow did not take {', '.join(f.name for f in files)} "
                                         f"({first_line(err, 240)}); they are in {run_dir}")
        return []
    return files


__all__ = ["Trackers", "connect", "flat_params", "log_artifacts", "record_files", "REPORT_FILES", "RECORD_FILES"]
