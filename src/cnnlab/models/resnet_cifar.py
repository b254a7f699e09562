"""CIFAR ResNets of He et al. 2016 (section 4.2): 6n+2 layers, 16/32/64 channels, n blocks each.

resnet20/32/44/56/110 have n = 3/5/7/9/18. ECE 661 lab 3 uses 1x1 conv + BN projection
shortcuts where the shape changes (``shortcut='conv'``): resnet20 has 272,474 parameters at
3x32x32. The paper's option A, zero-padded identity shortcuts (``shortcut='pad'``), gives
269,722 (the paper's "0.27M").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import unknown_name
from cnnlab.kernels.bn_act import bn_act
from cnnlab.models.layers import dropout, make_activation, scaled
from cnnlab.models.registry import register_model

SHORTCUTS = ("conv", "pad")


class PadShortcut(nn.Module):
    """Option A: subsample by 2 and zero-pad the new channels (no parameters)."""

    def __init__(self, extra_chans: int) -> None:
        super().__init__()
        self.extra = extra_chans

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::2, ::2]  # (N, C, H/2, W/2)
        return F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))


class BasicBlock(nn.Module):
    def __init__(self, in_chans: int, out_chans: int, stride: int, *, activation: str, shortcut: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, out_chans, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chans)
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(out_chans, out_chans, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chans)
        self.act2 = make_activation(activation)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_chans != out_chans:
            if shortcut == "conv":
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_chans, out_chans, 1, stride=stride, bias=False), nn.BatchNorm2d(out_chans)
                )
            else:
                self.shortcut = PadShortcut(out_chans - in_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # act(bn(conv(x)) [+ shortcut]): one fused kernel in CPU training (cnnlab.kernels.bn_act)
        out = bn_act(self.bn1, self.conv1(x), self.act1)
        return bn_act(self.bn2, self.conv2(out), self.act2, residual=self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(
        self,
        depth: int,
        *,
        in_chans: int = 3,
        num_classes: int = 10,
        base_width: int = 16,
        activation: str = "relu",
        shortcut: str = "conv",
        dropout_p: float = 0.0,
    ) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        if shortcut not in SHORTCUTS:
            raise unknown_name("resnet shortcut", shortcut, SHORTCUTS)
        n = (depth - 2) // 6
        width = base_width
        self.conv1 = nn.Conv2d(in_chans, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.act1 = make_activation(activation)
        self._in = width
        self.layer1 = self._make_layer(width, n, 1, activation, shortcut)
        self.layer2 = self._make_layer(2 * width, n, 2, activation, shortcut)
        self.layer3 = self._make_layer(4 * width, n, 2, activation, shortcut)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = dropout(dropout_p)  # not in the paper; p=0 (the default) leaves it out
        self.fc = nn.Linear(4 * width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # He et al. 2015 init, as torchvision's resnet.py
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, out_chans: int, blocks: int, stride: int, activation: str, shortcut: str) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(BasicBlock(self._in, out_chans, s, activation=activation, shortcut=shortcut))
            self._in = out_chans
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = bn_act(self.bn1, self.conv1(x), self.act1)  # (N, 16, H, W)
        x = self.layer1(x)  # (N, 16, H, W)
        x = self.layer2(x)  # (N, 32, H/2, W/2)
        x = self.layer3(x)  # (N, 64, H/4, W/4)
        x = torch.flatten(self.pool(x), 1)  # (N, 64)
        return self.fc(self.drop(x))  # (N, num_classes)


def _register(depth: int):
    def builder(*, in_chans=3, num_classes=10, input_size=(32, 32), width=1.0, activation="relu", shortcut="conv",
                dropout=0.0):
        # input_size is free: global average pooling takes any map of at least 1x1.
        # width multiplies the paper's 16/32/64 channels, as in every other model of the zoo.
        return CifarResNet(depth, in_chans=in_chans, num_classes=num_classes, base_width=scaled(16, width),
                           activation=activation, shortcut=shortcut, dropout_p=dropout)

    builder.__name__ = builder.__qualname__ = f"resnet{depth}"
    builder.__doc__ = f"ResNet-{depth} for 32x32 inputs (He et al. 2016, n={(depth - 2) // 6})."
    return register_model(input=(3, 32, 32), source="He et al. 2016; ECE 661 HW2 lab 3")(builder)


resnet20 = _register(20)
resnet32 = _register(32)
resnet44 = _register(44)
resnet56 = _register(56)
resnet110 = _register(110)
