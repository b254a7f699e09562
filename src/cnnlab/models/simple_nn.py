"""SimpleNN of ECE 661 HW2 (CIFAR-10): conv 3-8 k5, conv 8-16 k3, FC 576-120-84-10.

At 3x32x32 it has 82,030 parameters, the count the homework checks by hand:
conv1 3*5*5*8+8 = 608, conv2 8*3*3*16+16 = 1,168, fc1 576*120+120 = 69,240,
fc2 120*84+84 = 10,164, fc3 84*10+10 = 850. Lab 2 adds BatchNorm after each conv and
swaps ReLU for Swish; both are options here.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.layers import batchnorm2d, dropout, feature_shape, make_activation, scaled
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
        dropout_p: float = 0.0,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        c1, c2 = scaled(8, width), scaled(16, width)
        self.features = nn.Sequential()
        self.features.add_module("conv1", nn.Conv2d(in_chans, c1, kernel_size=5))
        self.features.add_module("bn1", batchnorm2d(c1, batchnorm))  # lab 2(b-i): BN after each conv
        self.features.add_module("act1", make_activation(activation))
        self.features.add_module("pool1", nn.MaxPool2d(2))
        self.features.add_module("conv2", nn.Conv2d(c1, c2, kernel_size=3))
        self.features.add_module("bn2", batchnorm2d(c2, batchnorm))
        self.features.add_module("act2", make_activation(activation))
        self.features.add_module("pool2", nn.MaxPool2d(2))
        C, H, W = feature_shape(self.features, in_chans, input_size, prefix="features.")  # (16, 6, 6) at 32x32
        self.classifier = nn.Sequential()
        self.classifier.add_module("fc1", nn.Linear(C * H * W, 120))
        self.classifier.add_module("act3", make_activation(activation))
        self.classifier.add_module("fc2", nn.Linear(120, 84))
        self.classifier.add_module("act4", make_activation(activation))
        self.classifier.add_module("drop3", dropout(dropout_p))
        self.classifier.add_module("fc3", nn.Linear(84, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 16, 6, 6) at 32x32: 32 -conv5-> 28 -pool-> 14 -conv3-> 12 -pool-> 6
        x = torch.flatten(x, 1)  # (N, 576)
        return self.classifier(x)  # (N, num_classes)


@register_model(input=(3, 32, 32), source="ECE 661 HW2 lab 1")
def simple_nn(*, in_chans=3, num_classes=10, input_size=(32, 32), activation="relu", batchnorm=False, dropout=0.0,
              width=1.0):
    return SimpleNN(in_chans=in_chans, num_classes=num_classes, input_size=input_size,
                    activation=activation, batchnorm=batchnorm, dropout_p=dropout, width=width)


@register_model(input=(3, 32, 32), source="ECE 661 HW2 lab 2(b): BatchNorm after each conv")
def simple_nn_bn(*, in_chans=3, num_classes=10, input_size=(32, 32), activation="relu", dropout=0.0, width=1.0):
    return SimpleNN(in_chans=in_chans, num_classes=num_classes, input_size=input_size,
                    activation=activation, batchnorm=True, dropout_p=dropout, width=width)


@register_model(input=(3, 32, 32), source="ECE 661 HW2 lab 2(b-iii): BatchNorm and Swish")
def simple_nn_bn_swish(*, in_chans=3, num_classes=10, input_size=(32, 32), dropout=0.0, width=1.0):
    return SimpleNN(in_chans=in_chans, num_classes=num_classes, input_size=input_size,
                    activation="swish", batchnorm=True, dropout_p=dropout, width=width)
