"""Building the model of a run: from the registry, or from a source for fine-tuning."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cnnlab.config.schema import FinetuneConfig
from cnnlab.engine.finetune import finetune_model
from cnnlab.data.normalize import Normalization
from cnnlab.models import FitsToData, build_model

DATA_FIT_IMAGES = 10_000  # a whitening layer's patch covariance settles long before the whole split


def create_model(name: str, options: dict[str, Any], *, finetune: FinetuneConfig, in_chans: int,
                 num_outputs: int, input_size: tuple[int, int]) -> nn.Module:
    """The run's model with ``num_outputs`` logits for ``in_chans`` x ``input_size`` images."""
    if finetune.source:
        return finetune_model(name, options, finetune, in_chans=in_chans, num_outputs=num_outputs,
                              input_size=input_size)
    return build_model(name, in_chans=in_chans, num_classes=num_outputs, input_size=input_size, **options)


def parameter_groups(model: nn.Module, *, decay_bias_and_norm: bool) -> list[dict]:
    """The trainable parameters as optimizer groups: with ``decay_bias_and_norm`` False the 1-D
    ones (biases, batch-norm scales and shifts) get no weight decay (timm's ``filter_bias_and_bn``;
    airbench decays only the conv and linear weights)."""
    params = trainable_parameters(model)
    if decay_bias_and_norm:
        return [{"params": params}]
    return [{"params": [p for p in params if p.dim() > 1]},
            {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0}]


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Only parameters that train go to the optimizer (frozen ones get no state and no decay)."""
    return [p for p in model.parameters() if p.requires_grad]


def fit_model_to_data(model: nn.Module, images, stats: Normalization, device: torch.device) -> None:
    """Let a model with a data-dependent layer (a frozen whitening conv) fit it to training images.

    images: the training split, (N, C, H, W) uint8; at most ``DATA_FIT_IMAGES`` of them, evenly
    spaced, are normalized as the loader will normalize them and passed to ``fit_to_data``.
    """
    if not isinstance(model, FitsToData):
        return
    images = torch.as_tensor(images)
    step = max(1, len(images) // DATA_FIT_IMAGES)
    model.fit_to_data(stats.normalize(images[::step][:DATA_FIT_IMAGES]).to(device))  # (n, C, H, W)
