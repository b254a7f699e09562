"""Multi-layer perceptron: (affine -> [norm] -> activation -> [dropout]) x L, then affine.

The fully-connected net of ENPM 703 part 1 and the MLP that CM2003 lab 2 compares with LeNet.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import unknown_name
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
    ) -> None:
        super().__init__()
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)  # (N, C*H*W)
        return self.head(self.hidden(x))


@register_model(input=(1, 28, 28), source="ENPM 703 part 1; CM2003 lab 2")
def mlp(*, in_chans=1, num_classes=10, input_size=(28, 28), hidden=(256, 128), activation="relu",
        norm="none", dropout=0.0):
    H, W = input_size
    return MLP(in_features=in_chans * H * W, num_classes=num_classes, hidden=tuple(hidden),
               activation=activation, norm=norm, dropout=dropout)
