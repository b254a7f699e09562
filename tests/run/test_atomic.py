import os
import time

import pytest

from cnnlab.atomic import atomic_write_bytes, atomic_write_json, remove_stray_temporaries
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


def test_run_folders_are_named_by_their_start_time_then_numbered(tmp_path, monkeypatch):
    started, strftime = time.localtime(), time.strftime
    monkeypatch.setattr(time, "strftime", lambda fmt, t=None: strftime(fmt, started))  # three runs in one second
    names = [RunDir.create(tmp_path, "mnist").path.name for _ in range(3)]
    stem = f"mnist-{strftime('%Y%m%d-%H%M%S', started)}"  # runs/<name>-<YYYYmmdd-HHMMSS>, as the README shows
    assert names == [stem, f"{stem}-2", f"{stem}-3"]


def test_stray_temporaries_are_removed_and_nothing_else(tmp_path):
    (tmp_path / ".metrics.jsonl.1a2b3c4d.tmp").write_bytes(b"half")
    (tmp_path / ".hidden").write_text("a user's file")
    atomic_write_json(tmp_path / "summary.json", {"ok": True})
    removed = remove_stray_temporaries(tmp_path)
    assert [p.name for p in removed] == [".metrics.jsonl.1a2b3c4d.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "summary.json"]


def test_a_read_only_folder_is_an_error_and_leaves_nothing(tmp_path):
    if os.geteuid() == 0:  # root writes anyway; a chmod cannot refuse it
        folder = tmp_path / "not-a-folder"
        folder.write_text("x")
        with pytest.raises(OSError):
            atomic_write_bytes(folder / "a.bin", b"x")
        return
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(PermissionError):
            atomic_write_bytes(tmp_path / "a.bin", b"x")
    finally:
        tmp_path.chmod(0o700)
    assert list(tmp_path.iterdir()) == []
