"""A config's parts checked without data or training: what the recipe check cannot see because the
model, optimizer, loss and augmentation registries take open keyword options.

``cnnlab sweep`` runs this on every grid point and on each searched key's bounds before the first
trial starts, so a misspelt model option fails the command in a line instead of failing every
trial one by one.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.config.schema import RunConfig
from cnnlab.data.augment import build_augmentations
from cnnlab.data.datasets import known_num_classes
from cnnlab.engine.losses import build_loss
from cnnlab.engine.session import lr_factor, make_optimizer_factory
from cnnlab.models.registry import check_model_options


def check_config_parts(config: RunConfig) -> None:
    """Raise the one-line ``CnnlabError`` that training would raise later for a model option, an
    optimizer key, a schedule, an augmentation or (where the class count is known before the data is
    read) a loss that cannot be built. Shapes are not checked: they need the data."""
    check_model_options(config.model.name, config.model.options)
    make_optimizer_factory(config)([nn.Parameter(torch.zeros(2, 2))])
    lr_factor(config, total_steps=10, steps_per_epoch=5)
    build_augmentations(config.data.augment)
    d = config.data
    classes = len(d.classes) if d.classes else known_num_classes(d.name, d.options)
    if classes:
        build_loss(config.loss.name, classes, label_smoothing=config.loss.label_smoothing, margin=config.loss.margin)
