"""SimpleNN of ECE 661 HW2 (CIFAR-10): conv 3-8 k5, conv 8-16 k3, FC 576-120-84-10.

At 3x32x32 it has 82,030 parameters, the count the homework checks by hand:
conv1 3*5*5*8+8 = 608, conv2 8*3*3*16+16 = 1,168, fc1 576*120+120 = 69,240,
fc2 120*84+84 = 10,164, fc3 84*10+10 = 850. Lab 2 adds BatchNorm after each conv and
swaps ReLU for Swish; both are options here.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.models.layers import feature_shape, make_activation
from cnnlab.models.registry import register_model


class SimpleNN(nn.Module):
    def __init__(
        self,
        *,
        in_chans: int = 3,
        num_classes: int = 10,
        input_size: tuple[int, int] = (32, 32),
        activation: str = "relu",
        batchnorm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, 8, kernel_size=5)
        self.bn1 = nn.BatchNorm2d(8) if batchnorm else nn.Identity()
        self.act1 = make_activation(activation)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3)
        self.bn2 = nn.BatchNorm2d(16) if batchnorm else nn.Identity()
        self.act2 = make_activation(activation)
        self.pool2 = nn.MaxPool2d(2)
        C, H, W = feature_shape(self._features(), in_chans, input_size)  # (16, 6, 6) at 32x32
        self.fc1 = nn.Linear(C * H * W, 120)
        self.act3 = make_activation(activation)
        self.fc2 = nn.Linear(120, 84)
        self.act4 = make_activation(activation)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc3 = nn.Linear(84, num_classes)

    def _features(self) -> nn.Sequential:
        names = ("conv1", "bn1", "act1", "pool1", "conv2", "bn2", "act2", "pool2")
        return nn.Sequential(OrderedDict((name, getattr(self, name)) for name in names))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.act1(self.bn1(self.conv1(x))))  # (N, 8, 14, 14) at 32x32
        x = self.pool2(self.act2(self.bn2(self.conv2(x))))  # (N, 16, 6, 6)
        x = torch.flatten(x, 1)  # (N, 576)
        x = self.act3(self.fc1(x))
        x = self.dropout(self.act4(self.fc2(x)))
        return self.fc3(x)


@register_model(input=(3, 32, 32), source="ECE 661 HW2 lab 1")
def simple_nn(*, in_chans=3, num_classes=10, input_size=(32, 32), activation="relu", batchnorm=False, dropout=0.0):
    return SimpleNN(in_chans=in_chans, num_classes=num_classes, input_size=input_size,
                    activation=activation, batchnorm=batchnorm, dropout=dropout)


@register_model(input=(3, 32, 32), source="ECE 661 HW2 lab 2(b): BatchNorm after each conv")
def simple_nn_bn(*, in_chans=3, num_classes=10, input_size=(32, 32), activation="relu", dropout=0.0):
    return SimpleNN(in_chans=in_chans, num_classes=num_classes, input_size=input_size,
                    activation=activation, batchnorm=True, dropout=dropout)


@register_model(input=(3, 32, 32), source="ECE 661 HW2 lab 2(b-iii): BatchNorm and Swish")
def simple_nn_bn_swish(*, in_chans=3, num_classes=10, input_size=(32, 32), dropout=0.0):
    return SimpleNN(in_chans=in_chans, num_classes=num_classes, input_size=input_size,
                    activation="swish", batchnorm=True, dropout=dropout)
