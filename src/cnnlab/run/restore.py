"""Rebuild a finished run from its folder alone: config, model weights, data split, normalization."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from torch import nn

from cnnlab.config import RunConfig, config_from_dict
from cnnlab.data.normalize import ChannelStats
from cnnlab.data.prepare import load_splits
from cnnlab.data.splits import Splits
from cnnlab.errors import CnnlabError
from cnnlab.models import build_model, load_matching_state_dict, read_state_dict
from cnnlab.run.rundir import RunDir


def load_run_config(run_path: str | Path) -> RunConfig:
    run = RunDir.open(run_path)
    return config_from_dict(yaml.safe_load((run.path / "config.yaml").read_text()), str(run.path / "config.yaml"))


def restore_model(run_path: str | Path, checkpoint: str = "best") -> nn.Module:
    """The run's model with the weights of ``checkpoints/<checkpoint>.safetensors`` (eval mode)."""
    run = RunDir.open(run_path)
    config = load_run_config(run.path)
    data = run.read_json("data.json")
    C, H, W = data["image_shape"]
    # The architecture only: a fine-tuned run's weights are all in its own checkpoint.
    model = build_model(config.model.name, in_chans=C, num_classes=data["num_outputs"], input_size=(H, W),
                        **config.model.options)
    path = run.checkpoints / f"{checkpoint}.safetensors"
    load_matching_state_dict(model, read_state_dict(path), source=f"checkpoint '{path}'")
    return model.eval()


def restore_splits(run_path: str | Path) -> tuple[Splits, ChannelStats]:
    """The run's train/val/test split (checked against the recorded val indices) and its stats."""
    run = RunDir.open(run_path)
    config = load_run_config(run.path)
    data = run.read_json("data.json")
    splits = load_splits(config.data)  # the recorded stats below, not a second fit
    if not np.array_equal(splits.val_indices, np.asarray(data["val_indices"])):
        raise CnnlabError(f"the {config.data.name} files differ from those of run {run.path}: "
                          "its validation split cannot be rebuilt")
    return splits, ChannelStats.from_dict(data["normalization"])
