"""The run directory: everything a run leaves, and all that later commands read.

runs/<name>-<YYYYmmdd-HHMMSS>/
  config.yaml          the resolved recipe (every default filled in)
  data.json            dataset, classes, image shape, split (val indices) and normalization stats
  metrics.jsonl        one JSON row per epoch
  summary.json         best and final metrics, test metrics, times, versions, device, seed, commit
  confusion.json       test-set confusion matrix of the best checkpoint
  model.txt            the model's repr
  checkpoints/best.safetensors, last.safetensors, last_state.pt
  curves.png, confusion.png, report.html

Every file is written atomically, so a killed run keeps its earlier checkpoints and metrics.
A finished run directory alone rebuilds the model, its data split and normalization
(``cnnlab.run.load``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.atomic import atomic_write_json, atomic_write_text


@dataclass
class RunDir:
    path: Path
    _rows: list[dict] = field(default_factory=list, repr=False)

    @classmethod
    def create(cls, root: str | Path, name: str) -> "RunDir":
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
    def open(cls, path: str | Path) -> "RunDir":
        """An existing run directory (its metrics rows loaded)."""
        path = Path(path)
        if not (path / "config.yaml").is_file():
            raise CnnlabError(f"{path} is not a cnnlab run directory (no config.yaml)")
        run = cls(path)
        run._rows = read_metrics(path)
        return run

    # --- writers ---------------------------------------------------------------------------

    def write_config(self, config: dict[str, Any] | str) -> None:
        import yaml

        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        atomic_write_text(self.path / "config.yaml", text)

    def write_json(self, name: str, data: Any) -> None:
        atomic_write_json(self.path / name, data)

    def write_text(self, name: str, text: str) -> None:
        atomic_write_text(self.path / name, text)

    def append_metrics(self, row: dict[str, Any]) -> None:
        """Add one epoch's row; the whole file is rewritten atomically (it is a few KB)."""
        self._rows.append(dict(row))
        lines = "".join(json.dumps(r) + "\n" for r in self._rows)
        atomic_write_text(self.path / "metrics.jsonl", lines)

    def keep_metrics(self, last_epoch: int) -> None:
        """Drop rows after ``last_epoch`` (written after the last checkpoint, before a kill)."""
        self._rows = [r for r in self._rows if r["epoch"] <= last_epoch]
        atomic_write_text(self.path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in self._rows))

    def write_summary(self, summary: dict[str, Any]) -> None:
        self.write_json("summary.json", summary)

    # --- readers ---------------------------------------------------------------------------

    @property
    def metrics(self) -> list[dict]:
        return list(self._rows)

    def read_json(self, name: str) -> Any:
        path = self.path / name
        if not path.is_file():
            raise CnnlabError(f"{path} is missing; the run may not have finished")
        return json.loads(path.read_text())

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"


def read_metrics(path: str | Path) -> list[dict]:
    file = Path(path) / "metrics.jsonl"
    if not file.is_file():
        return []
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
