"""Rebuild a finished run from its folder alone: model weights, data split, normalization."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from cnnlab.data.normalize import Normalization
from cnnlab.data.prepare import load_splits
from cnnlab.data.splits import Splits
from cnnlab.errors import CnnlabError
from cnnlab.models import build_model, load_matching_state_dict
from cnnlab.run.normalization import read_normalization
from cnnlab.run.rundir import RunDir


def restore_model(run_path: str | Path, checkpoint: str | int = "best") -> nn.Module:
    """The run's model with the weights of ``checkpoint`` (best, last or an epoch), in eval mode."""
    run = RunDir.open(run_path)
    config, data = run.config(), run.data_record()
    C, H, W = data.image_shape
    outputs = data.num_outputs or len(data.classes)
    # The architecture only: a fine-tuned run's weights are all in its own checkpoint.
    model = build_model(config.model.name, in_chans=C, num_classes=outputs, input_size=(H, W),
                        **config.model.options)
    weights = run.checkpoints.weights(checkpoint)
    load_matching_state_dict(model, weights, source=f"the {checkpoint} checkpoint of {run.path}")
    return model.eval()


def restore_normalization(run_path: str | Path) -> Normalization:
    """The normalization the run trained with, as recorded (never fit again): data.json's entry and,
    for pixel and zca, its arrays file, checked against the recorded sha256. Every reader uses this."""
    run = RunDir.open(run_path)
    return read_normalization(run.path, run.data_record().normalization)


def restore_splits(run_path: str | Path) -> tuple[Splits, Normalization]:
    """The run's train/val/test split (checked against the recorded val indices) and its recorded normalization."""
    run = RunDir.open(run_path)
    config, data = run.config(), run.data_record()
    splits = load_splits(config.data)  # the recorded normalization below, not a second fit
    if not np.array_equal(splits.val_indices, np.asarray(data.val_indices)):
        raise CnnlabError(f"the {config.data.name} files differ from those of run {run.path}: "
                          "its validation split cannot be rebuilt")
    return splits, read_normalization(run.path, data.normalization)
