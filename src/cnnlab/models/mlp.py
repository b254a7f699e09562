"""Multi-layer perceptron: (affine -> [norm] -> activation -> [dropout]) x L, then affine.

The fully-connected net of ENPM 703 part 1 and the MLP that CM2003 lab 2 compares with LeNet.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import CnnlabError, unknown_name
from cnnlab.models.layers import make_activation
from cnnlab.models.registry import register_model


class MLP(nn.Module):
    def __init__(
        self,
        *,
        in_features: int,
        num_classes: int,
        hidden: tuple[int, ...] = (256, 128),
        activation: str = "relu",
        norm: str = "none",
        dropout: float = 0.0,
        weight_scale: float | None = None,
    ) -> None:
        super().__init__()
        if weight_scale is not None and not (isinstance(weight_scale, (int, float)) and not isinstance(weight_scale, bool)
                                             and weight_scale > 0):
            raise CnnlabError(f"model 'mlp' option 'weight_scale' must be a positive number, got {weight_scale!r}")
        norms = {"none": None, "batchnorm": nn.BatchNorm1d, "layernorm": nn.LayerNorm}
        if norm not in norms:
            raise unknown_name("mlp norm", norm, norms)
        self.hidden = nn.Sequential()
        width = in_features
        for i, h in enumerate(hidden, start=1):
            block = nn.Sequential(nn.Linear(width, h))
            if norms[norm]:
                block.append(norms[norm](h))
            block.append(make_activation(activation))
            if dropout > 0:
                block.append(nn.Dropout(dropout))
            self.hidden.add_module(f"fc{i}", block)
            width = h
        self.head = nn.Linear(width, num_classes)
        if weight_scale is not None:  # ENPM 703's init: W ~ N(0, weight_scale^2), b = 0 (torch's own otherwise)
            for layer in self.modules():
                if isinstance(layer, nn.Linear):
                    nn.init.normal_(layer.weight, std=weight_scale)
                    nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)  # (N, C*H*W)
        return self.head(self.hidden(x))


@register_model(input=(1, 28, 28), source="ENPM 703 part 1; CM2003 lab 2")
def mlp(*, in_chans=1, num_classes=10, input_size=(28, 28), hidden=(256, 128), activation="relu",
        norm="none", dropout=0.0, weight_scale=None):
    """weight_scale: the std of every initial weight, biases zero (ENPM 703's lr x weight scale
    grid); None keeps torch's default (Kaiming-uniform)."""
    H, W = input_size
    return MLP(in_features=in_chans * H * W, num_classes=num_classes, hidden=tuple(hidden),
               activation=activation, norm=norm, dropout=dropout, weight_scale=weight_scale)
