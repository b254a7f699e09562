"""SimpleNet and SimpleNetDropout of CS 6476 project 2 (scene recognition, 15 classes).

The project's reference layout on 64x64 grayscale images: conv 1->10 k5, maxpool 3 stride 3,
ReLU, conv 10->20 k5, maxpool 3 stride 3, ReLU, flatten (20*5*5 = 500), FC 500->100, ReLU,
FC 100->15. SimpleNetDropout (part 7) adds dropout before the classifier; the report credits
it with validation accuracy 0.578 against SimpleNet's 0.507. Parameters at 1x64x64:
conv1 260, conv2 5,020, fc1 50,100, fc2 1,515; 56,895 in all.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.layers import batchnorm2d, dropout, feature_shape, make_activation, scaled
from cnnlab.models.registry import register_model


class SimpleNet(nn.Module):
    def __init__(
        self,
        *,
        in_chans: int = 1,
        num_classes: int = 15,
        input_size: tuple[int, int] = (64, 64),
        activation: str = "relu",
        batchnorm: bool = False,
        dropout_p: float = 0.0,
        width: float = 1.0,
        fc_dim: int = 100,
    ) -> None:
        super().__init__()
        c1, c2 = scaled(10, width), scaled(20, width)
        # The project pools before the activation; max pooling and ReLU commute, so the order is
        # kept only to print the same layer list as the reference.
        self.features = nn.Sequential()
        self.features.add_module("conv1", nn.Conv2d(in_chans, c1, kernel_size=5))
        self.features.add_module("bn1", batchnorm2d(c1, batchnorm))
        self.features.add_module("pool1", nn.MaxPool2d(3, stride=3))
        self.features.add_module("act1", make_activation(activation))
        self.features.add_module("conv2", nn.Conv2d(c1, c2, kernel_size=5))
        self.features.add_module("bn2", batchnorm2d(c2, batchnorm))
        self.features.add_module("pool2", nn.MaxPool2d(3, stride=3))
        self.features.add_module("act2", make_activation(activation))
        C, H, W = feature_shape(self.features, in_chans, input_size, prefix="features.")  # (20, 5, 5) at 64x64
        self.classifier = nn.Sequential()
        self.classifier.add_module("drop1", dropout(dropout_p))  # part 7: dropout before the classifier
        self.classifier.add_module("fc1", nn.Linear(C * H * W, fc_dim))
        self.classifier.add_module("act3", make_activation(activation))
        self.classifier.add_module("fc2", nn.Linear(fc_dim, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 20, 5, 5) at 64x64: 64 -conv5-> 60 -pool3-> 20 -conv5-> 16 -pool3-> 5
        x = torch.flatten(x, 1)  # (N, 500)
        return self.classifier(x)  # (N, 15)


@register_model(input=(1, 64, 64), num_classes=15, source="CS 6476 project 2, part 5 (SimpleNet)")
def simplenet(*, in_chans=1, num_classes=15, input_size=(64, 64), activation="relu", batchnorm=False, dropout=0.0,
              width=1.0, fc_dim=100):
    return SimpleNet(in_chans=in_chans, num_classes=num_classes, input_size=input_size, activation=activation,
                     batchnorm=batchnorm, dropout_p=dropout, width=width, fc_dim=fc_dim)


@register_model(input=(1, 64, 64), num_classes=15, source="CS 6476 project 2, part 7 (SimpleNetDropout)")
def simplenet_dropout(*, in_chans=1, num_classes=15, input_size=(64, 64), activation="relu", batchnorm=False,
                      dropout=0.5, width=1.0, fc_dim=100):
    # p=0.5 is nn.Dropout's default; the project leaves p to the student.
    return SimpleNet(in_chans=in_chans, num_classes=num_classes, input_size=input_size, activation=activation,
                     batchnorm=batchnorm, dropout_p=dropout, width=width, fc_dim=fc_dim)
