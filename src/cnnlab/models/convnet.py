"""ConvNet of Practical Work 1cd (CIFAR-10): three k5 p2 convs with 2x2 pooling, FC1000, FC10.

The report's hand count at 3x32x32 (question 10): conv1 5*5*3*32+32 = 2,432,
conv2 5*5*32*64+64 = 51,264, conv3 5*5*64*64+64 = 102,464, fc4 64*4*4*1000+1000 =
1,025,000, fc5 1000*10+10 = 10,010; 1,191,170 in all. Sections 3.4 and 3.5 add dropout
before the classifier and batch normalization after each conv: both are options.

Layers are named as in the report's table (conv1, pool1, ..., fc4, fc5) so that
``cnnlab summary convnet`` prints the same rows; ``features`` and ``classifier`` are the split
that ``to_fully_conv`` turns into a fully-convolutional net (questions 4-6).
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.layers import batchnorm2d, dropout, feature_shape, make_activation, scaled
from cnnlab.models.registry import register_model


class ConvNet(nn.Module):
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
        fc_dim: int = 1000,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential()
        chans = in_chans
        for i, out_chans in enumerate((32, 64, 64), start=1):
            out_chans = scaled(out_chans, width)
            # conv k5 p2 keeps H, W (question 8: p = (k-1)/2); maxpool 2x2 halves them (question 9).
            self.features.add_module(f"conv{i}", nn.Conv2d(chans, out_chans, kernel_size=5, padding=2))
            self.features.add_module(f"bn{i}", batchnorm2d(out_chans, batchnorm))  # section 3.5
            self.features.add_module(f"act{i}", make_activation(activation))
            self.features.add_module(f"pool{i}", nn.MaxPool2d(2))
            chans = out_chans
        C, H, W = feature_shape(self.features, in_chans, input_size, prefix="features.")  # (64, 4, 4) at 32x32
        # Dropout sits before each FC layer (section 3.4); p=0 leaves the net as in section 2.
        self.classifier = nn.Sequential()
        self.classifier.add_module("drop4", dropout(dropout_p))
        self.classifier.add_module("fc4", nn.Linear(C * H * W, fc_dim))
        self.classifier.add_module("act4", make_activation(activation))
        self.classifier.add_module("drop5", dropout(dropout_p))
        self.classifier.add_module("fc5", nn.Linear(fc_dim, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 64, 4, 4) at 32x32
        x = torch.flatten(x, 1)  # (N, 1024)
        return self.classifier(x)  # (N, num_classes)


@register_model(input=(3, 32, 32), source="Practical Work 1cd, section 2")
def convnet(*, in_chans=3, num_classes=10, input_size=(32, 32), activation="relu", batchnorm=False,
            dropout=0.0, width=1.0, fc_dim=1000):
    return ConvNet(in_chans=in_chans, num_classes=num_classes, input_size=input_size, activation=activation,
                   batchnorm=batchnorm, dropout_p=dropout, width=width, fc_dim=fc_dim)


@register_model(input=(3, 32, 32), source="Practical Work 1cd, section 3.4: dropout before the FC layers")
def convnet_dropout(*, in_chans=3, num_classes=10, input_size=(32, 32), activation="relu", dropout=0.5,
                    width=1.0, fc_dim=1000):
    return ConvNet(in_chans=in_chans, num_classes=num_classes, input_size=input_size, activation=activation,
                   batchnorm=False, dropout_p=dropout, width=width, fc_dim=fc_dim)


@register_model(input=(3, 32, 32), source="Practical Work 1cd, section 3.5: batch norm and dropout")
def convnet_bn(*, in_chans=3, num_classes=10, input_size=(32, 32), activation="relu", dropout=0.5,
               width=1.0, fc_dim=1000):
    return ConvNet(in_chans=in_chans, num_classes=num_classes, input_size=input_size, activation=activation,
                   batchnorm=True, dropout_p=dropout, width=width, fc_dim=fc_dim)
