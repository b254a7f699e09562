"""VGG-11/13/16 (Simonyan & Zisserman 2015, configurations A, B, D) sized for 32x32 CIFAR images.

The feature extractor is torchvision's ``vgg.py`` layer for layer (3x3 p1 convs, 2x2 max
pools after each stage, BatchNorm after each conv in the ``_bn`` variants), so at width 1 its
parameters equal torchvision's ``vgg16().features``: 14,714,688. Five pools take 32x32 to
1x1, so the classifier is the small one of the common CIFAR ports (as chengyangfu's
pytorch-vgg-cifar10): dropout, FC 512-512, ReLU, dropout, FC 512-512, ReLU, FC 512-10, in
place of ImageNet's 25,088-4,096-4,096-1,000. vgg16 has 15,245,130 parameters at 3x32x32.
Practical Work 1cd (question 4) uses VGG16 to ask what a larger input does to the FC layers.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models.layers import batchnorm2d, dropout, feature_shape, make_activation, scaled
from cnnlab.models.registry import register_model

# torchvision's cfgs: conv output channels, "M" for a 2x2 max pool.
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    # cnnlab's three-stage VGG for 28x28 and 32x32 images: 7.4M multiply-adds at 1x28x28
    "mini": [32, "M", 64, "M", 128, "M"],
}


def make_features(config: list[int | str], *, in_chans: int, width: float, batchnorm: bool,
                  activation: str) -> nn.Sequential:
    """The conv stages of one configuration, named by stage and position (conv3_2 = stage 3, conv 2)."""
    features = nn.Sequential()
    chans, stage, index = in_chans, 1, 1
    for item in config:
        if item == "M":
            features.add_module(f"pool{stage}", nn.MaxPool2d(2))
            stage, index = stage + 1, 1
            continue
        out_chans = scaled(int(item), width)
        features.add_module(f"conv{stage}_{index}", nn.Conv2d(chans, out_chans, kernel_size=3, padding=1))
        features.add_module(f"bn{stage}_{index}", batchnorm2d(out_chans, batchnorm))
        features.add_module(f"act{stage}_{index}", make_activation(activation))
        chans, index = out_chans, index + 1
    return features


class VGG(nn.Module):
    def __init__(
        self,
        config: str,
        *,
        in_chans: int = 3,
        num_classes: int = 10,
        input_size: tuple[int, int] = (32, 32),
        width: float = 1.0,
        batchnorm: bool = False,
        activation: str = "relu",
        dropout_p: float = 0.5,
        fc_dim: int = 512,
    ) -> None:
        super().__init__()
        self.features = make_features(CONFIGS[config], in_chans=in_chans, width=width, batchnorm=batchnorm,
                                      activation=activation)
        C, H, W = feature_shape(self.features, in_chans, input_size, prefix="features.")  # (512, 1, 1) at 32x32
        self.classifier = nn.Sequential()
        self.classifier.add_module("drop6", dropout(dropout_p))
        self.classifier.add_module("fc6", nn.Linear(C * H * W, fc_dim))
        self.classifier.add_module("act6", make_activation(activation))
        self.classifier.add_module("drop7", dropout(dropout_p))
        self.classifier.add_module("fc7", nn.Linear(fc_dim, fc_dim))
        self.classifier.add_module("act7", make_activation(activation))
        self.classifier.add_module("fc8", nn.Linear(fc_dim, num_classes))
        for m in self.modules():  # torchvision's vgg.py init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 512, H/32, W/32): (N, 512, 1, 1) at 32x32
        x = torch.flatten(x, 1)  # (N, 512)
        return self.classifier(x)  # (N, num_classes)


def _register(name: str, config: str, bn: bool):
    if bn:
        def builder(*, in_chans=3, num_classes=10, input_size=(32, 32), width=1.0, activation="relu", dropout=0.5,
                    fc_dim=512):
            return VGG(config, in_chans=in_chans, num_classes=num_classes, input_size=input_size, width=width,
                       batchnorm=True, activation=activation, dropout_p=dropout, fc_dim=fc_dim)
    else:
        def builder(*, in_chans=3, num_classes=10, input_size=(32, 32), width=1.0, batchnorm=False,
                    activation="relu", dropout=0.5, fc_dim=512):
            return VGG(config, in_chans=in_chans, num_classes=num_classes, input_size=input_size, width=width,
                       batchnorm=batchnorm, activation=activation, dropout_p=dropout, fc_dim=fc_dim)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = f"VGG configuration {config}{' with BatchNorm' if bn else ''} for 32x32 inputs."
    depth = name[3:5]
    source = f"Simonyan & Zisserman 2015, VGG-{depth} (config {config}){' + BN' if bn else ''}; CIFAR classifier"
    return register_model(input=(3, 32, 32), source=source)(builder)


vgg11 = _register("vgg11", "A", bn=False)
vgg11_bn = _register("vgg11_bn", "A", bn=True)
vgg13 = _register("vgg13", "B", bn=False)
vgg13_bn = _register("vgg13_bn", "B", bn=True)
vgg16 = _register("vgg16", "D", bn=False)
vgg16_bn = _register("vgg16_bn", "D", bn=True)


class VGGMini(nn.Module):
    """Three VGG stages of one 3x3 conv + BN + activation + pool each, then one linear layer.

    The "VGG-style convnet" the bf16 speed probe of this project trained: small enough that a
    2-core CPU runs an epoch of Fashion-MNIST in about 10 s, so ``recipes/fashion_mnist.yaml``
    reaches 93% validation accuracy in 20 epochs (docs/BENCHMARKS.md).
    """

    def __init__(self, *, in_chans: int = 1, num_classes: int = 10, input_size: tuple[int, int] = (28, 28),
                 width: float = 1.0, activation: str = "relu", dropout_p: float = 0.0) -> None:
        super().__init__()
        self.features = make_features(CONFIGS["mini"], in_chans=in_chans, width=width, batchnorm=True,
                                      activation=activation)
        C, H, W = feature_shape(self.features, in_chans, input_size, prefix="features.")  # (128, 3, 3) at 28x28
        self.classifier = nn.Sequential()
        self.classifier.add_module("drop4", dropout(dropout_p))
        self.classifier.add_module("fc4", nn.Linear(C * H * W, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 128, 3, 3) at 28x28
        x = torch.flatten(x, 1)  # (N, 1152)
        return self.classifier(x)  # (N, num_classes)


@register_model(input=(1, 28, 28), source="cnnlab: three VGG stages + linear head, the fast Fashion-MNIST net")
def vgg_mini(*, in_chans=1, num_classes=10, input_size=(28, 28), width=1.0, activation="relu", dropout=0.0):
    return VGGMini(in_chans=in_chans, num_classes=num_classes, input_size=input_size, width=width,
                   activation=activation, dropout_p=dropout)
