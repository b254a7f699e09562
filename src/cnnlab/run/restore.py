"""Rebuild a finished run from its folder alone: config, model weights, data split, normalization."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from torch import nn

from cnnlab.config import RunConfig, config_from_dict
from cnnlab.config.schema import FinetuneConfig
from cnnlab.data.normalize import ChannelStats
from cnnlab.data.splits import Splits
from cnnlab.errors import CnnlabError
from cnnlab.run.rundir import RunDir


def load_run_config(run_path: str | Path) -> RunConfig:
    run = RunDir.open(run_path)
    return config_from_dict(yaml.safe_load((run.path / "config.yaml").read_text()), str(run.path / "config.yaml"))


def restore_model(run_path: str | Path, checkpoint: str = "best") -> nn.Module:
    """The run's model with the weights of ``checkpoints/<checkpoint>.safetensors`` (eval mode)."""
    from cnnlab.engine.checkpoint import load_weights
    from cnnlab.engine.model_setup import create_model
    from cnnlab.models.weights import load_matching_state_dict

    run = RunDir.open(run_path)
    config = load_run_config(run.path)
    data = run.read_json("data.json")
    C, H, W = data["image_shape"]
    # The architecture only: a fine-tuned run's weights are all in its own checkpoint.
    model = create_model(config.model.name, config.model.options, finetune=FinetuneConfig(),
                         in_chans=C, num_outputs=data["num_outputs"], input_size=(H, W))
    path = run.checkpoints / f"{checkpoint}.safetensors"
    load_matching_state_dict(model, load_weights(path), source=f"checkpoint '{path}'")
    return model.eval()


def restore_splits(run_path: str | Path) -> tuple[Splits, ChannelStats]:
    """The run's train/val/test split (checked against the recorded val indices) and its stats."""
    from cnnlab.engine.run_data import prepare_splits

    run = RunDir.open(run_path)
    config = load_run_config(run.path)
    data = run.read_json("data.json")
    splits, _ = prepare_splits(config.data)
    if not np.array_equal(splits.val_indices, np.asarray(data["val_indices"])):
        raise CnnlabError(f"the {config.data.name} files differ from those of run {run.path}: "
                          "its validation split cannot be rebuilt")
    return splits, ChannelStats.from_dict(data["normalization"])
