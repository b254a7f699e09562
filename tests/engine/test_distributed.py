"""Data-parallel training under torchrun: two gloo processes on the CPU against one process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cnnlab.run import RunDir

# No batch norm and no dropout, no augmentation: then one step of two ranks on half batches each must
# equal one step of one process on the whole batch. train_limit = the batch: one step per epoch.
QUICK = str(Path(__file__).parents[2] / "recipes" / "quick_test.yaml")
RECIPE = [QUICK, "name=ddp", "data.name=synthetic", "data.options={shape: [1, 12, 12], train_size: 400, test_size: 100}",
          "data.val_size=100", "data.train_limit=64", "schedule.name=constant", "data.batch_size=64", "model.name=simple_nn",
          "optim.name=sgd", "optim.lr=0.1", "optim.momentum=0.9", "optim.weight_decay=1.0e-4",
          "train.precision=fp32", "train.channels_last=false"]


def cnnlab(*words, nproc: int | None, cwd: Path) -> subprocess.CompletedProcess:
    launcher = ([sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", "--standalone",
                 "-m", "cnnlab"] if nproc else [sys.executable, "-m", "cnnlab"])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*launcher, "train", *words], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def weights(run: Path, epoch: int) -> dict[str, torch.Tensor]:
    tensors = load_file(run / "checkpoints" / f"epoch-{epoch:04d}.safetensors")
    return {k: v for k, v in tensors.items() if k.startswith("model/")}


def test_two_ranks_step_as_one_process_on_the_whole_batch_and_write_once(tmp_path):
    one = cnnlab(*RECIPE, "train.epochs=1", "output_dir=one", nproc=None, cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    two = cnnlab(*RECIPE, "train.epochs=2", "output_dir=two", nproc=2, cwd=tmp_path)
    assert two.returncode == 0, two.stderr
    assert "data-parallel: 2 processes (gloo), each training 32 images in batches of 32" in two.stdout
    (single,) = (tmp_path / "one").iterdir()
    (parallel,) = (tmp_path / "two").iterdir()  # one run folder, written by rank 0 alone
    a, b = weights(single, 1), weights(parallel, 1)
    assert a.keys() == b.keys()
    for key in a:  # after the first step: the same weights within 1e-5
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-5)
    run = RunDir(parallel)
    assert [r.epoch for r in run.metrics()] == [1, 2]  # each row once
    assert sorted(p.name for p in run.checkpoints.folder.iterdir()) == \
        sorted(f"epoch-{e:04d}.safetensors" for e in {1, 2, run.summary().best.epoch})
    summary = run.summary()
    assert summary.status == "completed" and summary.test.images == 100
    assert summary.final.train_acc is not None and run.metrics()[0].images_per_s > 0
    assert json.loads((parallel / "settings.json").read_text())["precision"] == "fp32"


def test_a_batch_that_does_not_divide_among_the_ranks_says_which_do(tmp_path):
    bad = cnnlab(*RECIPE, "data.batch_size=63", "output_dir=bad", nproc=2, cwd=tmp_path)
    assert bad.returncode != 0
    assert ("cnnlab: error: data.batch_size=63 does not divide among 2 processes (torchrun --nproc-per-node): "
            "use a multiple of 2, such as 62 or 64") in bad.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_a_killed_two_rank_run_resumes_exactly(tmp_path):
    words = [*RECIPE, "data.train_limit=256", "data.augment=[{name: flip_lr}]", "train.epochs=3"]
    straight = cnnlab(*words, "output_dir=straight", nproc=2, cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    (reference,) = (tmp_path / "straight").iterdir()
    # The same run, then its summary and last checkpoint removed: it resumes from the newest checkpoint
    # left (the best, or none), as after a kill in epoch 3...
    cut = cnnlab(*words, "output_dir=cut", "train.epochs=3", nproc=2, cwd=tmp_path)
    assert cut.returncode == 0
    (run,) = (tmp_path / "cut").iterdir()
    (run / "summary.json").unlink()
    (run / "checkpoints" / "epoch-0003.safetensors").unlink()
    # ...resumed by two ranks, ends where the straight run did.
    resumed = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--standalone",
                              "-m", "cnnlab", "train", "--resume", str(run)], cwd=tmp_path, capture_output=True,
                             text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr
    assert [r.without_times() for r in RunDir(run).metrics()] == \
        [r.without_times() for r in RunDir(reference).metrics()]
    assert RunDir(run).summary().test == RunDir(reference).summary().test
    one = subprocess.run([sys.executable, "-m", "cnnlab", "train", "--resume", str(run)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 2 and "has completed" in one.stderr
