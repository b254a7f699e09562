"""LeNet of CM2003 lab 2 (task 5) and the classic LeNet-5 it is named after.

CM2003's "LeNet" is a small Keras net on 128x128 grayscale skin images (benign vs malignant,
one sigmoid output): conv ``base`` k3 'same' + ReLU + maxpool 2, conv ``2*base`` k3 'same' +
ReLU + maxpool 2, flatten, dense ``2*base`` + ReLU, dense 1. With base=32 Keras reports
4,213,249 parameters (320 + 18,496 + 4,194,368 + 65), and so does ``lenet`` here. The sigmoid
is left to the loss (BCE-with-logits or hinge), so ``num_classes=1`` gives one logit.

``lenet5`` is LeCun et al. 1998's layout as usually re-implemented (ReLU and max pooling in
place of the scaled tanh and subsampling): conv 6 k5, pool, conv 16 k5, pool, FC 120-84-10 on
1x32x32; 61,706 parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.layers import batchnorm2d, dropout, feature_shape, make_activation, scaled
from cnnlab.models.registry import register_model


class LeNet(nn.Module):
    """Two conv blocks then two or three dense layers; both LeNets of the zoo are this shape."""

    def __init__(
        self,
        *,
        in_chans: int,
        num_classes: int,
        input_size: tuple[int, int],
        conv_chans: tuple[int, int],
        kernel_size: int,
        padding: int,
        hidden: tuple[int, ...],
        activation: str = "relu",
        batchnorm: bool = False,
        dropout_p: float = 0.0,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential()
        chans = in_chans
        for i, out_chans in enumerate(conv_chans, start=1):
            self.features.add_module(f"conv{i}", nn.Conv2d(chans, out_chans, kernel_size, padding=padding))
            self.features.add_module(f"bn{i}", batchnorm2d(out_chans, batchnorm))
            self.features.add_module(f"act{i}", make_activation(activation))
            self.features.add_module(f"pool{i}", nn.MaxPool2d(2))
            chans = out_chans
        C, H, W = feature_shape(self.features, in_chans, input_size, prefix="features.")
        self.classifier = nn.Sequential()
        width = C * H * W
        for i, units in enumerate(hidden, start=1):
            self.classifier.add_module(f"fc{i}", nn.Linear(width, units))
            self.classifier.add_module(f"act_fc{i}", make_activation(activation))
            self.classifier.add_module(f"drop{i}", dropout(dropout_p))
            width = units
        self.classifier.add_module(f"fc{len(hidden) + 1}", nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 64, 32, 32) for CM2003 at 128x128; (N, 16, 5, 5) for LeNet-5 at 32x32
        x = torch.flatten(x, 1)  # (N, C*H*W)
        return self.classifier(x)  # (N, num_classes)


@register_model(input=(1, 128, 128), num_classes=1, source="CM2003 lab 2, task 5 (LeNet on 128x128 skin images)")
def lenet(*, in_chans=1, num_classes=1, input_size=(128, 128), base=32, activation="relu", batchnorm=False,
          dropout=0.0, width=1.0):
    base = scaled(base, width)
    # Keras padding='same' with a 3x3 kernel is padding 1: the convs keep H, W and only the pools halve them.
    return LeNet(in_chans=in_chans, num_classes=num_classes, input_size=input_size, conv_chans=(base, 2 * base),
                 kernel_size=3, padding=1, hidden=(2 * base,), activation=activation, batchnorm=batchnorm,
                 dropout_p=dropout)


@register_model(input=(1, 32, 32), source="LeCun et al. 1998 (LeNet-5), as the classic re-implementations")
def lenet5(*, in_chans=1, num_classes=10, input_size=(32, 32), activation="relu", batchnorm=False, dropout=0.0,
           width=1.0):
    return LeNet(in_chans=in_chans, num_classes=num_classes, input_size=input_size,
                 conv_chans=(scaled(6, width), scaled(16, width)), kernel_size=5, padding=0,
                 hidden=(scaled(120, width), scaled(84, width)), activation=activation, batchnorm=batchnorm,
                 dropout_p=dropout)
