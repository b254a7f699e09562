"""Shared fixtures: small configs that train in seconds, and real Fashion-MNIST when present."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from cnnlab.config import apply_overrides, config_from_dict, config_to_dict, load_recipe
from cnnlab.data.datasets import fashion_mnist_dir
from cnnlab.errors import CnnlabError


def need(condition: bool, reason: str) -> None:
    """Skip when a real dependency is missing, except under CI=true where it must be there."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: this test must run, not skip)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A local port nothing listens on (bound, then released): for a server to start on, or for a
    connection to be refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_overrides(config, *overrides):
    """A copy of ``config`` with ``key=value`` overrides, validated like the CLI's."""
    return config_from_dict(apply_overrides(config_to_dict(config), list(overrides)))


class Kill(Exception):
    """Raised from an epoch callback: the run stops there as a crash would."""


def fit_killed_after(config, epoch: int) -> Path:
    """Train ``config`` until ``epoch`` has committed, then crash; the run folder it left."""
    from cnnlab.engine.fit import fit
    from cnnlab.engine.progress import Progress

    def kill(row):
        if row.epoch == epoch:
            raise Kill()

    with pytest.raises(Kill):
        fit(config, progress=Progress(quiet=True), callbacks=[kill])
    return sorted(Path(config.output_dir).iterdir())[-1]


@pytest.fixture(scope="session", autouse=True)
def autotune_cache(tmp_path_factory):
    """Measured ``auto`` settings are cached for this test session only (and its subprocesses),
    never in the user's ~/.cache."""
    os.environ["CNNLAB_CACHE_DIR"] = str(tmp_path_factory.mktemp("cnnlab-cache"))
    return os.environ["CNNLAB_CACHE_DIR"]


@pytest.fixture(scope="session")
def fashion_dir():
    try:
        return fashion_mnist_dir()
    except CnnlabError as err:
        need(False, str(err))  # what is missing, where it was looked for, and how to get it


@pytest.fixture
def tiny_config(tmp_path):
    """A run of a few seconds: synthetic 1x16x16 data, simple_nn, two epochs."""
    return load_recipe(None, [
        "name=tiny", f"output_dir={tmp_path / 'runs'}", "data.name=synthetic",
        "data.options={shape: [1, 16, 16], train_size: 600, test_size: 200, noise: 0.3}",
        "data.val_size=100", "data.batch_size=64", "model.name=simple_nn",
        "optim.name=sgd", "optim.lr=0.05", "optim.momentum=0.9", "train.epochs=2", "train.precision=fp32",
    ])


def synthetic_run(out, *, shape=(1, 16, 16), train_size=600, test_size=200, noise=0.6, val_size=100,
                  model="simple_nn", epochs=2) -> Path:
    """Train a small fp32 run on synthetic images in seconds; returns its run folder."""
    from cnnlab.engine.fit import fit
    from cnnlab.engine.progress import Progress

    config = load_recipe(None, [
        f"output_dir={out}", "data.name=synthetic", f"data.val_size={val_size}",
        f"data.options={{shape: {list(shape)}, train_size: {train_size}, test_size: {test_size}, noise: {noise}}}",
        f"model.name={model}", "optim.lr=0.05", "optim.momentum=0.9", f"train.epochs={epochs}", "train.precision=fp32"])
    return Path(fit(config, progress=Progress(quiet=True)).run_dir)

