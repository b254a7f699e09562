"""The open-ended CIFAR-10 model of ENPM 703 assignment 2, part 5 (PyTorch).

As the report describes it: conv 64 k5 p2 + BN + ReLU + maxpool 2, conv 32 k3 p1 + BN +
ReLU + maxpool 2, flatten, FC 256 and FC 128 with ReLU and dropout, FC 10; trained with Adam
(lr 1e-3, weight decay 1e-4). The report does not give the dropout p: 0.5 (nn.Dropout's
default) is used. Parameters at 3x32x32: conv1 4,864, bn1 128, conv2 18,464, bn2 64,
fc1 2,048*256+256 = 524,544, fc2 32,896, fc3 1,290; 582,250 in all.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.layers import batchnorm2d, dropout, feature_shape, make_activation, scaled
from cnnlab.models.registry import register_model


class EnpmOpen(nn.Module):
    def __init__(
        self,
        *,
        in_chans: int = 3,
        num_classes: int = 10,
        input_size: tuple[int, int] = (32, 32),
        activation: str = "relu",
        batchnorm: bool = True,
        dropout_p: float = 0.5,
        width: float = 1.0,
        hidden: tuple[int, ...] = (256, 128),
    ) -> None:
        super().__init__()
        c1, c2 = scaled(64, width), scaled(32, width)  # the report: "channel_1 = 64, channel_2 = 32"
        self.features = nn.Sequential()
        self.features.add_module("conv1", nn.Conv2d(in_chans, c1, kernel_size=5, padding=2))
        self.features.add_module("bn1", batchnorm2d(c1, batchnorm))
        self.features.add_module("act1", make_activation(activation))
        self.features.add_module("pool1", nn.MaxPool2d(2))
        self.features.add_module("conv2", nn.Conv2d(c1, c2, kernel_size=3, padding=1))
        self.features.add_module("bn2", batchnorm2d(c2, batchnorm))
        self.features.add_module("act2", make_activation(activation))
        self.features.add_module("pool2", nn.MaxPool2d(2))
        C, H, W = feature_shape(self.features, in_chans, input_size, prefix="features.")  # (32, 8, 8) at 32x32
        self.classifier = nn.Sequential()
        units_in = C * H * W
        for i, units in enumerate(hidden, start=1):  # "256 -> 128 -> 10 performed great" (tuning notes)
            self.classifier.add_module(f"fc{i}", nn.Linear(units_in, units))
            self.classifier.add_module(f"act_fc{i}", make_activation(activation))
            self.classifier.add_module(f"drop{i}", dropout(dropout_p))
            units_in = units
        self.classifier.add_module(f"fc{len(hidden) + 1}", nn.Linear(units_in, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 32, 8, 8) at 32x32
        x = torch.flatten(x, 1)  # (N, 2048)
        return self.classifier(x)  # (N, num_classes)


@register_model(input=(3, 32, 32), source="ENPM 703 assignment 2, part 5 (open-ended model)")
def enpm_open(*, in_chans=3, num_classes=10, input_size=(32, 32), activation="relu", batchnorm=True, dropout=0.5,
              width=1.0, hidden=(256, 128)):
    return EnpmOpen(in_chans=in_chans, num_classes=num_classes, input_size=input_size, activation=activation,
                    batchnorm=batchnorm, dropout_p=dropout, width=width, hidden=tuple(hidden))
