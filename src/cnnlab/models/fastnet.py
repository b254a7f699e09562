"""FastNet: the net of the fast Fashion-MNIST recipe, after airbench's CIFAR-10 speed-record net.

Keller Jordan's airbench94 (github.com/KellerJordan/cifar10-airbench) trains to 94% on
CIFAR-10 in seconds with: a first conv whose frozen filters whiten 2x2 image patches (the PCA
eigenvectors of the training patches scaled by 1/sqrt(eigenvalue), and their negatives, so that
the activation after it loses nothing); three conv groups conv3x3 -> maxpool 2 -> BN -> act
-> conv3x3 -> BN -> act; identity (Dirac) init of the convs; a global max pool and a bias-free
linear head. That is the design here, resized for 1x28x28 images on a 2-core CPU, where a
training step costs about its multiply-adds (near 300 GFLOP/s in bf16 on Zen 4):

- Widths 16/32/64 (fast recipe) or 32/64/128 (long recipe) in place of 64/256/256: 3.4M and
  11.7M multiply-adds per image, for 10.8k and 4.3k training images/s (bf16, 2 cores).
- ReLU in place of GELU: the same net trains 1.4x faster on this CPU.
- Maps go 28 -> 27 (whitening, 2x2 patches at stride 1) -> 13 -> 6 -> 3, then the global max
  pool: as airbench's 32 -> 31 -> 15 -> 7 -> 3. A group pools only while that leaves at least a
  2x2 map, so other input sizes never give BatchNorm a 1x1 map.
- Tried and left: whitening at stride 2 (non-overlapping patches, 14x14 maps) lets widths
  32/64/128 train as fast as 16/32/64 at stride 1, but was less accurate at equal training
  time: 92.9% against 93.4% validation on the fast recipe, and 93.4% (64/128/256, 20 epochs)
  against 94.8% (32/64/128 at stride 1, 16 epochs) on the long one.

At 1x28x28 and the default widths: 73,696 parameters, 32 of them (the whitening filters) frozen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.models.layers import feature_shape
from cnnlab.models.registry import register_model

PATCH = 2  # airbench94's whitening patch; 3x3 gives 18 channels, which oneDNN's bf16 convs run 3x slower
WHITEN_EPS = 5e-4  # airbench94's eps: added to the patch-covariance eigenvalues (0.039 at the smallest here)


def dirac_init(conv: nn.Conv2d) -> nn.Conv2d:
    """airbench's conv init: the first ``in_channels`` filters pass their input channel through
    unchanged (``dirac_``), the rest keep PyTorch's default init; a deep net starts near identity."""
    with torch.no_grad():
        nn.init.dirac_(conv.weight[: conv.in_channels])
    return conv


class ConvGroup(nn.Module):
    """conv3x3 -> maxpool 2 -> BN -> ReLU -> conv3x3 -> BN -> ReLU (airbench's ConvGroup): (N, C, H, W) ->
    (N, out_chans, H/2, W/2); without the pool (``pool=False``) the map keeps its size."""

    def __init__(self, in_chans: int, out_chans: int, *, pool: bool = True) -> None:
        super().__init__()
        self.conv1 = dirac_init(nn.Conv2d(in_chans, out_chans, 3, padding=1, bias=False))  # BN follows: no bias
        # Before BN and ReLU, as airbench: they run on a quarter of the positions.
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()
        self.bn1 = nn.BatchNorm2d(out_chans)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = dirac_init(nn.Conv2d(out_chans, out_chans, 3, padding=1, bias=False))
        self.bn2 = nn.BatchNorm2d(out_chans)
        self.act2 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.conv1(x))  # (N, out_chans, H/2, W/2); H, W without the pool
        x = self.act1(self.bn1(x))
        return self.act2(self.bn2(self.conv2(x)))  # (N, out_chans, H/2, W/2)


class FastNet(nn.Module):
    def __init__(
        self,
        *,
        in_chans: int = 1,
        num_classes: int = 10,
        input_size: tuple[int, int] = (28, 28),
        widths: tuple[int, ...] = (16, 32, 64),
    ) -> None:
        super().__init__()
        dims = in_chans * PATCH * PATCH  # one whitened coordinate per pixel of a patch
        # Frozen, before and after fit_to_data; until then the +-identity, which loses nothing either.
        whiten = nn.Conv2d(in_chans, 2 * dims, PATCH, bias=False)
        whiten.weight.requires_grad_(False)
        with torch.no_grad():
            eye = torch.eye(dims).reshape(dims, in_chans, PATCH, PATCH)
            whiten.weight.copy_(torch.cat([eye, -eye]))
        self.features = nn.Sequential()
        self.features.add_module("whiten", whiten)
        self.features.add_module("act0", nn.ReLU(inplace=True))  # ReLU(z), ReLU(-z): both signs kept
        chans = 2 * dims
        H, W = input_size[0] - PATCH + 1, input_size[1] - PATCH + 1  # 27x27 at 28x28
        for i, out_chans in enumerate(widths, start=1):
            # A group pools while that leaves at least 2x2 (airbench's net ends on 3x3 maps too): BatchNorm
            # on a 1x1 map would see one value per channel for a batch of one.
            pool = min(H, W) // 2 >= 2
            H, W = (H // 2, W // 2) if pool else (H, W)
            self.features.add_module(f"group{i}", ConvGroup(chans, out_chans, pool=pool))
            chans = out_chans
        C, h, w = feature_shape(self.features, in_chans, input_size, prefix="features.")  # (64, 3, 3) at 28x28
        self.features.add_module("pool", nn.MaxPool2d((h, w)))  # global max pool, as airbench
        # A single Linear: to_fully_conv turns it into a 1x1 conv. No bias, as airbench: the classes are balanced.
        self.classifier = nn.Sequential()
        self.classifier.add_module("fc", nn.Linear(C, num_classes, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, 64, 1, 1) after the global max pool
        x = torch.flatten(x, 1)  # (N, 64)
        return self.classifier(x)  # (N, num_classes)

    @torch.no_grad()
    def fit_to_data(self, images: torch.Tensor) -> None:
        """Set the frozen whitening filters from normalized training images (N, C, H, W), float.

        Each filter is an eigenvector of the covariance of all 2x2 patches (the layer's
        inputs) divided by sqrt(eigenvalue + eps), so the first half of the outputs has
        covariance close to the identity on those patches; the second half is its negative
        (airbench94's ``init_whiten_conv``). The engine passes at most 10,000 images.
        """
        whiten = self.features.whiten
        p = PATCH
        patches = F.unfold(images.float(), p)  # (N, C*p*p, L), L = 27*27 at 28x28
        patches = patches.transpose(1, 2).reshape(-1, patches.shape[1])  # (N*L, C*p*p): 7.3M rows for 10k images
        covariance = torch.cov(patches.T).double()  # (C*p*p, C*p*p); float32 sums, float64 eigen-solve
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # columns of eigenvectors
        filters = (eigenvectors / (eigenvalues + WHITEN_EPS).sqrt()).T  # (C*p*p, C*p*p), one filter a row
        filters = filters.reshape(-1, *whiten.weight.shape[1:]).to(whiten.weight)  # (C*p*p, C, p, p)
        whiten.weight.copy_(torch.cat([filters, -filters]))
        whiten.weight.requires_grad_(False)


@register_model(input=(1, 28, 28), source="airbench94 (Keller Jordan), resized for Fashion-MNIST on CPU")
def fastnet(*, in_chans=1, num_classes=10, input_size=(28, 28), widths=(16, 32, 64)):
    """The fast recipe's net; the long recipe sets ``widths: [32, 64, 128]``."""
    return FastNet(in_chans=in_chans, num_classes=num_classes, input_size=input_size, widths=tuple(widths))
