"""Building the model of a run: from the registry, or from a source for fine-tuning."""

from __future__ import annotations

from typing import Any

from torch import nn

from cnnlab.config.schema import FinetuneConfig
from cnnlab.engine.finetune import finetune_model
from cnnlab.models import build_model


def create_model(name: str, options: dict[str, Any], *, finetune: FinetuneConfig, in_chans: int,
                 num_outputs: int, input_size: tuple[int, int]) -> nn.Module:
    """The run's model with ``num_outputs`` logits for ``in_chans`` x ``input_size`` images."""
    if finetune.source:
        return finetune_model(name, options, finetune, in_chans=in_chans, num_outputs=num_outputs,
                              input_size=input_size)
    return build_model(name, in_chans=in_chans, num_classes=num_outputs, input_size=input_size, **options)


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Only parameters that train go to the optimizer (frozen ones get no state and no decay)."""
    return [p for p in model.parameters() if p.requires_grad]
