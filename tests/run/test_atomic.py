import os

import pytest

from cnnlab.atomic import atomic_write_bytes, atomic_write_json
from cnnlab.run.rundir import RunDir


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    atomic_write_json(path, {"epoch": 1})

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        atomic_write_json(path, {"epoch": 2})
    assert path.read_text().strip() == '{\n  "epoch": 1\n}'
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_write_is_complete_on_disk(tmp_path):
    atomic_write_bytes(tmp_path / "a" / "b.bin", b"x" * 100_000)
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"x" * 100_000


def test_run_folders_never_collide(tmp_path):
    a, b = RunDir.create(tmp_path, "same"), RunDir.create(tmp_path, "same")
    assert a.path != b.path and a.path.parent == b.path.parent and (b.path / "checkpoints").is_dir()


def test_metrics_rows_survive_and_truncate(tmp_path):
    run = RunDir.create(tmp_path, "m")
    for epoch in (1, 2, 3):
        run.append_metrics({"epoch": epoch, "val_acc": epoch / 10})
    run.write_config({"name": "m"})
    reopened = RunDir.open(run.path)
    assert [r["epoch"] for r in reopened.metrics] == [1, 2, 3]
    reopened.keep_metrics(2)
    assert [r["epoch"] for r in RunDir.open(run.path).metrics] == [1, 2]
