"""Faults around a run, through the command line: a full disk, a read-only folder, damaged or
hostile checkpoints, resuming what cannot be resumed. Each is one line on stderr with exit status
2 (a diverged run: status 1 and the reason), and nothing written before is lost."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnlab.run import RunDir
from tests.conftest import need

TINY = ["name=t", "data.name=synthetic", "data.options={shape: [1, 16, 16], train_size: 600, test_size: 200}",
        "data.val_size=100", "data.batch_size=64", "model.name=simple_nn", "optim.lr=0.05",
        "train.precision=fp32", "train.threads=1"]


def cnnlab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnlab.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("cnnlab: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.fixture
def mount(tmp_path):
    """Mount a tmpfs of a given size (or read-only) at a new folder; unmounted at the end."""
    mounted = []

    def make(options: str) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        need(result.returncode == 0, f"cannot mount a tmpfs here ({result.stderr.decode().strip()}); needs root")
        mounted.append(point)
        return point

    yield make
    for point in mounted:
        subprocess.run(["umount", "--lazy", str(point)], capture_output=True)


def test_a_full_disk_is_one_line_and_keeps_the_earlier_checkpoints(tmp_path, mount):
    # Learn the sizes on a normal folder: the record, and one checkpoint file.
    assert cnnlab("train", "quick_test", *TINY, "train.epochs=1", f"output_dir={tmp_path / 'sizes'}").returncode == 0
    (probe,) = (tmp_path / "sizes").iterdir()
    checkpoint = (probe / "checkpoints" / "epoch-0001.safetensors").stat().st_size
    record = sum(p.stat().st_size for p in probe.iterdir() if p.name in ("config.yaml", "data.json", "model.txt"))
    # Room for the record, metrics and one checkpoint and a half: the second checkpoint cannot fit.
    disk = mount(f"size={record + int(1.5 * checkpoint) + 64 * 1024}")
    result = cnnlab("train", "quick_test", *TINY, "train.epochs=4", "optim.lr=1.0e-9", f"output_dir={disk}")
    one_line_error(result, "No space left on device", "files written before are intact")
    (run,) = disk.iterdir()
    saved = RunDir(run).checkpoints
    assert saved.epochs() == [1] and saved.load(1).epoch == 1  # whole and readable
    assert [r.epoch for r in RunDir(run).metrics()] in ([1], [1, 2])  # row 2 may precede its failed commit
    assert not [p for p in run.rglob("*.tmp")]
    # With space again, the run resumes from epoch 1 and finishes.
    big = mount("size=20m")
    copy = big / run.name
    subprocess.run(["cp", "-a", str(run), str(copy)], check=True)
    resumed = cnnlab("train", "--resume", str(copy))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming at epoch 2" in resumed.stdout and RunDir(copy).summary().epochs_run == 4


def test_a_read_only_output_folder_is_one_line(tmp_path, mount):
    readonly = mount("size=1m,ro")
    result = cnnlab("train", "quick_test", *TINY, "train.epochs=1", f"output_dir={readonly / 'runs'}")
    one_line_error(result, "Read-only file system", "output_dir=")


@pytest.fixture
def killed_run(tmp_path):
    """A run of 3 epochs stopped after its second checkpoint (its summary says failed)."""
    result = cnnlab("train", "quick_test", *TINY, "train.epochs=2", f"output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    (run,) = tmp_path.iterdir()
    (run / "summary.json").unlink()  # as after a SIGKILL: no summary
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("epochs: 2", "epochs: 3"))
    return run


def _pickle_gadget(path: Path) -> bytes:
    """A torch.save file whose unpickling would create a file (it must never be unpickled)."""
    class Gadget:
        def __reduce__(self):
            return (os.system, (f"touch {path}",))

    buffer = io.BytesIO()
    torch.save({"state": Gadget()}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("damage, words", [
    ("empty", ["epoch-0002.safetensors is not a readable safetensors file"]),
    ("gadget", ["epoch-0002.safetensors is not a readable safetensors file"]),
    ("renamed", ["says epoch 2", "does not belong to epoch 3"]),
    ("metrics", ["metrics.jsonl lacks rows of epochs 1..2, which checkpoint 2 has"]),
    ("data", ["the synthetic data differs from what run", "it cannot be resumed exactly"]),
])
def test_a_damaged_run_refuses_resume_in_one_line(killed_run, tmp_path, damage, words):
    latest = killed_run / "checkpoints" / "epoch-0002.safetensors"
    marker = tmp_path / "gadget-ran"
    if damage == "empty":
        latest.write_bytes(b"")
    elif damage == "gadget":
        latest.write_bytes(_pickle_gadget(marker))
    elif damage == "renamed":
        shutil.copy(latest, latest.with_name("epoch-0003.safetensors"))  # epoch 2's file under epoch 3's name
    elif damage == "metrics":
        rows = (killed_run / "metrics.jsonl").read_text().splitlines()
        (killed_run / "metrics.jsonl").write_text(rows[0] + "\n")
    else:  # the run's data changed: here its recorded split no longer matches the one rebuilt
        record = json.loads((killed_run / "data.json").read_text())
        record["val_indices"][0] += 1
        (killed_run / "data.json").write_text(json.dumps(record))
    metrics_before = (killed_run / "metrics.jsonl").read_bytes()
    one_line_error(cnnlab("train", "--resume", str(killed_run)), *words)
    assert not marker.exists()
    assert (killed_run / "metrics.jsonl").read_bytes() == metrics_before  # refused before it changed anything


def test_resume_cleans_stray_temporaries_and_continues(killed_run):
    (killed_run / "checkpoints" / ".epoch-0003.safetensors.1a2b3c4d.tmp").write_bytes(b"half a file")
    (killed_run / ".metrics.jsonl.5e6f7a8b.tmp").write_bytes(b"{")
    result = cnnlab("train", "--resume", str(killed_run))
    assert result.returncode == 0, result.stderr
    assert "resuming at epoch 3" in result.stdout
    assert not list(killed_run.rglob("*.tmp")) and RunDir(killed_run).summary().epochs_run == 3


def test_finished_and_diverged_runs_refuse_resume(tmp_path):
    done = cnnlab("train", "quick_test", *TINY, "train.epochs=1", f"output_dir={tmp_path / 'done'}")
    assert done.returncode == 0
    (run,) = (tmp_path / "done").iterdir()
    summary = (run / "summary.json").read_bytes()
    one_line_error(cnnlab("train", "--resume", str(run)), "has completed after 1 epochs; there is nothing to resume")
    assert (run / "summary.json").read_bytes() == summary
    diverged = cnnlab("train", "quick_test", *TINY, "optim.name=sgd", "optim.lr=1.0e+6", f"output_dir={tmp_path / 'nan'}", "--json")
    assert diverged.returncode == 1
    assert json.loads(diverged.stdout)["divergence"]["epoch"] == 1
    assert "training diverged at epoch 1, step" in diverged.stderr and "test set was not evaluated" in diverged.stderr
    (nan_run,) = (tmp_path / "nan").iterdir()
    one_line_error(cnnlab("train", "--resume", str(nan_run)), "diverged in epoch 1", "lower optim.lr")


@pytest.mark.parametrize("target, words", [
    ("missing", ["is not a cnnlab run directory (no such folder)"]),
    ("not-a-run", ["is not a cnnlab run directory (no config.yaml)"]),
])
def test_resume_of_something_that_is_not_a_run(tmp_path, target, words):
    (tmp_path / "not-a-run").mkdir()
    one_line_error(cnnlab("train", "--resume", str(tmp_path / target)), *words)
    one_line_error(cnnlab("report", str(tmp_path / target)), *words)
