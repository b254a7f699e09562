"""ConvNet of Practical Work 1cd (CIFAR-10): three k5 p2 convs with 2x2 pooling, FC1000, FC10.

The report's hand count at 3x32x32 (question 10): conv1 5*5*3*32+32 = 2,432,
conv2 5*5*32*64+64 = 51,264, conv3 5*5*64*64+64 = 102,464, fc4 64*4*4*1000+1000 =
1,025,000, fc5 1000*10+10 = 10,010; 1,191,170 in all. Sections 3.4 and 3.5 add dropout
before the classifier and batch normalization after each conv: both are options.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.layers import feature_shape, make_activation
from cnnlab.models.registry import register_model


def conv_block(in_chans: int, out_chans: int, *, activation: str, batchnorm: bool) -> nn.Sequential:
    """conv k5 p2 (keeps H, W) -> [BN] -> activation -> maxpool 2x2 (halves H, W)."""
    layers = [nn.Conv2d(in_chans, out_chans, kernel_size=5, padding=2)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(out_chans))
    layers += [make_activation(activation), nn.MaxPool2d(2)]
    return nn.Sequential(*layers)


class ConvNet(nn.Module):
    def __init__(
        self,
        *,
        in_chans: int = 3,
        num_classes: int = 10,
        input_size: tuple[int, int] = (32, 32),
        activation: str = "relu",
        batchnorm: bool = False,
        dropout: float = 0.0,
        width: float = 1.0,
        fc_dim: int = 1000,
    ) -> None:
        super().__init__()
        c1, c2, c3 = (max(1, round(c * width)) for c in (32, 64, 64))
        self.features = nn.Sequential()
        self.features.add_module("conv1", conv_block(in_chans, c1, activation=activation, batchnorm=batchnorm))
        self.features.add_module("conv2", conv_block(c1, c2, activation=activation, batchnorm=batchnorm))
        self.features.add_module("conv3", conv_block(c2, c3, activation=activation, batchnorm=batchnorm))
        C, H, W = feature_shape(self.features, in_chans, input_size)  # (64, 4, 4) at 32x32
        # Dropout sits before each FC layer (practical work 3.4); p=0 leaves the net as in 2.
        self.classifier = nn.Sequential()
        self.classifier.add_module("drop4", nn.Dropout(dropout) if dropout > 0 else nn.Identity())
        self.classifier.add_module("fc4", nn.Linear(C * H * W, fc_dim))
        self.classifier.add_module("act4", make_activation(activation))
        self.classifier.add_module("drop5", nn.Dropout(dropout) if dropout > 0 else nn.Identity())
        self.classifier.add_module("fc5", nn.Linear(fc_dim, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 64, 4, 4) at 32x32
        x = torch.flatten(x, 1)  # (N, 1024)
        return self.classifier(x)


@register_model(input=(3, 32, 32), source="Practical Work 1cd, section 2")
def convnet(*, in_chans=3, num_classes=10, input_size=(32, 32), activation="relu", batchnorm=False,
            dropout=0.0, width=1.0, fc_dim=1000):
    return ConvNet(in_chans=in_chans, num_classes=num_classes, input_size=input_size, activation=activation,
                   batchnorm=batchnorm, dropout=dropout, width=width, fc_dim=fc_dim)


@register_model(input=(3, 32, 32), source="Practical Work 1cd, section 3.4: dropout before the FC layers")
def convnet_dropout(*, in_chans=3, num_classes=10, input_size=(32, 32), activation="relu", dropout=0.5,
                    width=1.0, fc_dim=1000):
    return ConvNet(in_chans=in_chans, num_classes=num_classes, input_size=input_size, activation=activation,
                   batchnorm=False, dropout=dropout, width=width, fc_dim=fc_dim)


@register_model(input=(3, 32, 32), source="Practical Work 1cd, section 3.5: batch norm and dropout")
def convnet_bn(*, in_chans=3, num_classes=10, input_size=(32, 32), activation="relu", dropout=0.5,
               width=1.0, fc_dim=1000):
    return ConvNet(in_chans=in_chans, num_classes=num_classes, input_size=input_size, activation=activation,
                   batchnorm=True, dropout=dropout, width=width, fc_dim=fc_dim)
