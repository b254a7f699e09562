"""The small AlexNet of CM2003 lab 2 (task 6), with width base ``n_base`` and dropout.

Five 3x3 'same' convs of n_base, 2n, 4n, 4n, 2n channels, each followed by ReLU, with 2x2
max pooling after the first, second and fifth; flatten; dense 128 and dense 64 with ReLU
(task 6b puts dropout 0.4 after each); one output unit for the binary skin-lesion task. On
1x128x128 with n_base=32 Keras reports 2,419,649 parameters, as ``alexnet_small`` gives here.
The lab then tunes n_base in {8, 16, 32}; the report settles on 8 (accuracy ~0.82).
The sigmoid is left to the loss: ``num_classes=1`` gives one logit for BCE or hinge (task 6f).
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.layers import batchnorm2d, dropout, feature_shape, make_activation, scaled
from cnnlab.models.registry import register_model

# (channels as a multiple of n_base, max-pool after this conv?) for the five convs.
CONVS = ((1, True), (2, True), (4, False), (4, False), (2, True))


class AlexNetSmall(nn.Module):
    def __init__(
        self,
        *,
        in_chans: int = 1,
        num_classes: int = 1,
        input_size: tuple[int, int] = (128, 128),
        n_base: int = 8,
        dense: tuple[int, ...] = (128, 64),
        activation: str = "relu",
        batchnorm: bool = False,
        dropout_p: float = 0.0,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential()
        chans = in_chans
        for i, (mult, pool) in enumerate(CONVS, start=1):
            out_chans = mult * n_base
            self.features.add_module(f"conv{i}", nn.Conv2d(chans, out_chans, kernel_size=3, padding=1))
            self.features.add_module(f"bn{i}", batchnorm2d(out_chans, batchnorm))
            self.features.add_module(f"act{i}", make_activation(activation))
            if pool:
                self.features.add_module(f"pool{i}", nn.MaxPool2d(2))
            chans = out_chans
        C, H, W = feature_shape(self.features, in_chans, input_size, prefix="features.")  # (2n, 16, 16) at 128x128
        self.classifier = nn.Sequential()
        width = C * H * W
        for i, units in enumerate(dense, start=6):  # fc6, fc7 after conv1..conv5, as AlexNet numbers them
            self.classifier.add_module(f"fc{i}", nn.Linear(width, units))
            self.classifier.add_module(f"act{i}", make_activation(activation))
            self.classifier.add_module(f"drop{i}", dropout(dropout_p))  # task 6b: Dropout(0.4) after each dense
            width = units
        self.classifier.add_module(f"fc{6 + len(dense)}", nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 2*n_base, 16, 16) at 128x128: three 2x2 pools
        x = torch.flatten(x, 1)  # (N, 2*n_base*256)
        return self.classifier(x)  # (N, 1): one logit


@register_model(input=(1, 128, 128), num_classes=1, source="CM2003 lab 2, task 6 (AlexNet with n_base)")
def alexnet_small(*, in_chans=1, num_classes=1, input_size=(128, 128), n_base=8, dense=(128, 64),
                  activation="relu", batchnorm=False, dropout=0.0, width=1.0):
    return AlexNetSmall(in_chans=in_chans, num_classes=num_classes, input_size=input_size,
                        n_base=scaled(n_base, width), dense=tuple(dense), activation=activation,
                        batchnorm=batchnorm, dropout_p=dropout)
