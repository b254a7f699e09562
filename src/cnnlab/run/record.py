"""The typed records of a run directory, each with a schema version.

Every JSON file a run leaves is one of these dataclasses, written by ``RunDir`` and read back
into the same type, so trainers, reports and later tools (eval, compare, sweeps) share one
contract instead of poking at dict keys:

  data.json       DataRecord   what was read and how it was split and normalized
  metrics.jsonl   MetricsRow   one per epoch
  summary.json    Summary      status, best/final rows, the one test result, times, device
  confusion.json  Confusion    the test confusion matrix of the best checkpoint

Schema 0 is what cnnlab wrote before records had versions; it reads with the missing fields
at their defaults. A file from a newer schema is refused with a one-line error.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cnnlab.errors import CnnlabError

SCHEMA = 1

#: How a run ended. ``failed`` and ``interrupted`` runs can be resumed; the others are final.
Status = Literal["completed", "early_stopped", "diverged", "failed", "interrupted"]
FINAL_STATUSES = ("completed", "early_stopped", "diverged")
TIME_KEYS = ("epoch_time", "val_time", "wall_time", "images_per_s")  # differ between identical runs


@dataclass(frozen=True)
class DataRecord:
    """What rebuilding the run's data needs (written before the first epoch)."""

    dataset: str
    classes: list[str]  # class names in label order
    image_shape: list[int]  # C, H, W
    sizes: dict[str, int]  # images in train, val, test
    split_seed: int
    val_indices: list[int]  # positions in the official train part held out as val
    # the scheme, fit on the train split only, and its small values: {"scheme": "channel", "mean": [...],
    # "std": [...]}; pixel and zca name the file of their arrays and its sha256 (cnnlab.run.normalization).
    # Runs before the schemes wrote a bare mean and std, read as channel
    normalization: dict[str, Any]
    source: str | None = None  # the folder or file actually read ("generated" for synthetic data); schema 1
    options: dict[str, Any] = field(default_factory=dict)  # the dataset loader's keyword arguments
    class_ids: list[int] | None = None  # data.classes: labels kept from the original dataset
    num_outputs: int | None = None  # logits of the model (1 for binary losses); None for scratch runs
    notes: dict[str, Any] = field(default_factory=dict)  # the dataset's facts: files skipped, the cache read
    schema: int = SCHEMA


@dataclass(frozen=True)
class MetricsRow:
    """One epoch: accuracies are fractions, times seconds."""

    epoch: int
    lr: float
    train_loss: float
    train_acc: float
    train_top5: float | None
    val_loss: float
    val_acc: float
    val_top5: float | None
    epoch_time: float  # training pass
    val_time: float  # validation pass
    images_per_s: float  # training images per second
    wall_time: float | None = None  # the whole epoch, checkpoint included (schema 1)

    def without_times(self) -> dict[str, Any]:
        """The fields that identical runs share (for comparing a resumed run with a straight one)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in TIME_KEYS}


@dataclass(frozen=True)
class TestResult:
    loss: float
    acc: float
    top5: float | None
    images: int
    checkpoint: str  # e.g. "best (epoch 19, by val_acc)"


@dataclass(frozen=True)
class Divergence:
    """Where a non-finite value stopped training; nothing after the last finite epoch was saved."""

    epoch: int
    step: int | None  # batch within the epoch (1-based); None when found after the epoch
    lr: float
    last_finite_loss: float | None
    what: str  # "train loss", "val loss" or "weights"

    def describe(self) -> str:
        """'the train loss was not finite at epoch 3 (lr 1)': the reason a diverged run gives."""
        return f"the {self.what} was not finite at epoch {self.epoch} (lr {self.lr:.3g})"


@dataclass(frozen=True)
class Summary:
    status: Status
    run_dir: str
    name: str
    seed: int
    dataset: dict[str, Any]  # name, classes, image_shape, train/val/test sizes
    model: dict[str, Any]  # name, parameters, trainable_parameters
    epochs_run: int
    monitor: str
    best: MetricsRow | None
    final: MetricsRow | None
    test: TestResult | None  # evaluated once, at the end, with the best checkpoint
    first_batch_loss: float | None
    expected_initial_loss: float | None
    time: dict[str, Any]  # train_wall_s, total_wall_s, epoch_mean_s, train_images_per_s
    device: dict[str, Any]  # type, precision, channels_last, threads
    environment: dict[str, Any]  # versions, device name, git commit
    divergence: Divergence | None = None
    failure: str | None = None  # the error that stopped a failed run
    # precision, channels_last, compile and how they were chosen: the recipe, measured, or the cache
    settings: dict[str, Any] | None = None
    budget: dict[str, Any] | None = None  # train.time_budget_s: budget_s, planned and actual steps, each plan
    schema: int = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Confusion:
    split: str
    classes: list[str]
    matrix: list[list[int]]  # (K, K): rows true classes, columns predictions
    checkpoint: str = "best"  # which weights were evaluated, e.g. "best (epoch 19, by val_acc)"
    schema: int = SCHEMA


# --- reading: mappings back into records, checked field by field ------------------------------


def to_dict(record: Any) -> dict[str, Any]:
    return dataclasses.asdict(record)


def from_dict(cls: type, data: Any, where: str) -> Any:
    """Build record type ``cls`` from a mapping read from ``where`` (a file name for messages)."""
    if not isinstance(data, Mapping):
        raise CnnlabError(f"{where}: expected a JSON object, found {type(data).__name__}")
    schema = data.get("schema", 0)
    if not isinstance(schema, int) or schema > SCHEMA:
        raise CnnlabError(f"{where} has schema {schema!r}; this cnnlab reads up to {SCHEMA}: upgrade cnnlab")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _value(hints[f.name], data[f.name], f"{where}: {f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise CnnlabError(f"{where} lacks '{f.name}'; the file is damaged or not a cnnlab record")
    if "schema" in kwargs or any(f.name == "schema" for f in dataclasses.fields(cls)):
        kwargs["schema"] = schema  # the version it was written with, 0 when it had none
    return cls(**kwargs)


def _value(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _value(inner[0], value, where)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    return value


def upgrade_summary(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 0 wrote ``status: "failed: <error>"`` and the config inside the summary."""
    data = {k: v for k, v in data.items() if k != "config"}
    status = str(data.get("status", ""))
    if status.startswith("failed: "):
        data["status"], data["failure"] = "failed", status.removeprefix("failed: ")
    return data


__all__ = ["SCHEMA", "Status", "FINAL_STATUSES", "DataRecord", "MetricsRow", "TestResult", "Divergence",
           "Summary", "Confusion", "from_dict", "to_dict"]
