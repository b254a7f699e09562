"""The run directory: everything a run leaves, and all that later commands read.

runs/<name>-<YYYYmmdd-HHMMSS>/
  data.json          DataRecord: dataset, folder read, classes, split (val indices), normalization
  normalization.npz  the pixel and zca schemes' arrays (mean image, whitening matrix), named in data.json
  model.txt          the model's repr
  settings.json      precision, channels_last, compile: the values, and the timings when measured (auto)
  config.yaml        the resolved recipe; written last of the three, so its presence marks a run
  metrics.jsonl      one MetricsRow per epoch
  checkpoints/       epoch-NNNN.safetensors: weights + trainer state of the last and best epochs
  summary.json       Summary: status, best and final rows, the one test result, times, device
  confusion.json     Confusion: test confusion matrix of the best checkpoint
  curves.png, confusion.png, report.html   drawn by cnnlab.report from the files above
  eval-<split>.json  cnnlab eval: a later evaluation (metrics, mistakes, timing), and its eval-<split>-*.png
                     (eval-<split>-int8.json: the int8 model's)
  explain.json       cnnlab explain: Grad-CAM and saliency peaks, stages, and its explain-*.png
  quantize.json      cnnlab quantize: fp32/bf16/int8 size, speed and accuracy; quantized/int8.safetensors
  export/            cnnlab export: model.onnx / model.pt2, preprocessing.json, export.json

Every file is written atomically (``cnnlab.atomic``), so a killed run keeps whole files; the
typed records live in ``cnnlab.run.record`` and are written and read only through ``RunDir``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from cnnlab.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, remove_stray_temporaries
from cnnlab.config import RunConfig, config_from_dict
from cnnlab.errors import CnnlabError
from cnnlab.run.checkpoint import Checkpoints
from cnnlab.run.record import Confusion, DataRecord, MetricsRow, Summary, from_dict, to_dict, upgrade_summary


class RunDir:
    """One run's folder; create it with ``RunDir.create`` or open an existing one with ``RunDir.open``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.checkpoints = Checkpoints(self.path / "checkpoints")

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @classmethod
    def create(cls, root: str | Path, name: str) -> RunDir:
        """Make ``root/<name>-<time>/`` (with -2, -3... if that exists already)."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        stem = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        for attempt in range(1, 1000):
            path = root / (stem if attempt == 1 else f"{stem}-{attempt}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            (path / "checkpoints").mkdir()
            return cls(path)
        raise CnnlabError(f"cannot create a run folder under {root}: too many runs named {stem}")

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory; a folder without config.yaml is refused in one line."""
        path = Path(path)
        if not path.is_dir():
            raise CnnlabError(f"{path} is not a cnnlab run directory (no such folder)")
        if not (path / "config.yaml").is_file():
            partial = (path / "checkpoints").is_dir()  # RunDir.create made it; the record never finished
            raise CnnlabError(f"{path} is not a cnnlab run directory (no config.yaml)"
                              + ("; the run was killed before it started: start it again" if partial else ""))
        return cls(path)

    def clean(self) -> list[Path]:
        """Remove the temporary files that killed writes left here and in checkpoints/."""
        return remove_stray_temporaries(self.path) + self.checkpoints.clean()

    # --- the record written before the first epoch ------------------------------------------

    def write_record(self, data: DataRecord, config_yaml: str, model_text: str,
                     settings: dict[str, Any] | None = None, files: dict[str, bytes] | None = None) -> None:
        """``files`` (name -> bytes: the normalization's arrays), data.json that names them, model.txt and
        settings.json, then config.yaml: a folder with config.yaml has the whole record."""
        for name, blob in (files or {}).items():
            atomic_write_bytes(self.path / name, blob)
        atomic_write_json(self.path / "data.json", to_dict(data))
        atomic_write_text(self.path / "model.txt", model_text)
        if settings is not None:
            atomic_write_json(self.path / "settings.json", settings)
        atomic_write_text(self.path / "config.yaml", config_yaml)

    def settings(self) -> dict[str, Any] | None:
        """The precision, layout and compilation the run trains with, and how they were chosen
        (None for runs from before settings.json)."""
        if not (self.path / "settings.json").is_file():
            return None
        data = self._json("settings.json")
        if not isinstance(data, dict) or not {"precision", "channels_last", "compile"} <= data.keys():
            raise CnnlabError(f"{self.path / 'settings.json'} is damaged: it lacks the precision settings")
        return data

    def data_record(self) -> DataRecord:
        return from_dict(DataRecord, self._json("data.json"), str(self.path / "data.json"))

    def config_text(self) -> str:
        return (self.path / "config.yaml").read_text()

    def config_dict(self) -> dict[str, Any]:
        where = self.path / "config.yaml"
        try:
            data = yaml.safe_load(self.config_text())
        except yaml.YAMLError as err:
            raise CnnlabError(f"{where} is not valid YAML: {getattr(err, 'problem', err)}") from err
        if not isinstance(data, dict):
            raise CnnlabError(f"{where} is damaged: expected a mapping of keys")
        return data

    def config(self) -> RunConfig:
        """The resolved recipe of a ``cnnlab train`` run (a scratch run has a different kind)."""
        data = self.config_dict()
        if data.get("kind") == "scratch":
            raise CnnlabError(f"{self.path} is a cnnlab.scratch run (NumPy); this needs a run of cnnlab train")
        return config_from_dict(data, str(self.path / "config.yaml"))

    # --- per epoch ------------------------------------------------------------------------------

    def metrics(self) -> list[MetricsRow]:
        file = self.path / "metrics.jsonl"
        if not file.is_file():
            return []
        rows = []
        for number, line in enumerate(file.read_text().splitlines(), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except ValueError as err:
                    raise CnnlabError(f"{file} line {number} is not JSON ({err})") from err
                rows.append(from_dict(MetricsRow, row, f"{file} line {number}"))
        return rows

    def write_metrics(self, rows: list[MetricsRow]) -> None:
        """Rewrite metrics.jsonl whole (a few KB), atomically: a row is never half there."""
        atomic_write_text(self.path / "metrics.jsonl",
                          "".join(json.dumps(to_dict(r), allow_nan=True) + "\n" for r in rows))

    # --- at the end -----------------------------------------------------------------------------

    def write_summary(self, summary: Summary) -> None:
        atomic_write_json(self.path / "summary.json", to_dict(summary))

    def summary(self) -> Summary | None:
        """The run's summary, or None while it runs or after a kill (no summary.json yet)."""
        if not (self.path / "summary.json").is_file():
            return None
        return from_dict(Summary, upgrade_summary(self._json("summary.json")), str(self.path / "summary.json"))

    def write_confusion(self, confusion: Confusion) -> None:
        atomic_write_json(self.path / "confusion.json", to_dict(confusion))

    def confusion(self) -> Confusion | None:
        if not (self.path / "confusion.json").is_file():
            return None
        return from_dict(Confusion, self._json("confusion.json"), str(self.path / "confusion.json"))

    def write_file(self, name: str, data: bytes | str) -> Path:
        """A derived file (a figure, the report) in the run folder."""
        path = self.path / name
        atomic_write_bytes(path, data.encode() if isinstance(data, str) else data)
        return path

    def write_json(self, name: str, data: Any) -> Path:
        """A derived JSON record (eval-test.json, quantize.json) in the run folder."""
        path = self.path / name
        atomic_write_json(path, data)
        return path

    def evaluations(self) -> dict[str, dict[str, Any]]:
        """The records of ``cnnlab eval``, by split: {"test": eval-test.json's content, ...}."""
        return {p.stem.removeprefix("eval-"): self._json(p.name) for p in sorted(self.path.glob("eval-*.json"))}

    def record(self, name: str) -> Any | None:
        """A derived JSON record (explain.json, quantize.json) or None when the run has none."""
        return self._json(name) if (self.path / name).is_file() else None

    def _json(self, name: str) -> Any:
        path = self.path / name
        if not path.is_file():
            raise CnnlabError(f"{path} is missing; the run may not have started or finished")
        try:
            return json.loads(path.read_text())
        except ValueError as err:
            raise CnnlabError(f"{path} is not valid JSON ({err}); the file is damaged") from err


__all__ = ["RunDir"]


def evaluation_key(record: dict) -> str:
    """'test', 'val', or 'test-int8' for the int8 model's: the name in eval-<key>.json and its figures."""
    return f"{record['split']}-int8" if record.get("int8") else record["split"]
