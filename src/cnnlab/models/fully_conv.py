"""Fully-convolutional conversion of a classifier (Practical Work 1cd, questions 4-6).

A Linear layer that reads a flattened C x h x w feature map computes what a Conv2d with
kernel h x w and no padding computes at the single position where the kernel fits
(question 5); the Linear layers after it read 1x1 maps and become 1x1 convs. The converted
net gives the same scores at the design input and, on a larger image, a map of class scores,
one per h x w window of the feature map (question 6), e.g. for ``convnet`` at 3x64x64 a
(10, 5, 5) map: features give 64x8x8, and a 4x4 kernel fits 5x5 times.

Applies to models that follow torchvision's AlexNet/VGG layout: ``features`` (conv part),
optionally ``avgpool`` (torchvision's adaptive pool, dropped when it is the identity at the
design input), and a ``classifier`` Sequential that ``forward`` applies to the flattened map.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.layers import ACTIVATIONS, feature_shape

#: Classifier layers that act elementwise, so they work unchanged on (N, C, h, w) maps.
ELEMENTWISE = (nn.Dropout, nn.Identity) + tuple({type(make()) for make in ACTIVATIONS.values()})


class FullyConvNet(nn.Module):
    """``features`` followed by a classifier made of convolutions: images of any size >= the design size."""

    def __init__(self, features: nn.Module, classifier: nn.Sequential) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, C, H', W')
        return self.classifier(x)  # (N, num_classes, H'-h+1, W'-w+1); (N, num_classes, 1, 1) at the design size


def _linear_as_conv(linear: nn.Linear, in_chans: int, kernel: tuple[int, int]) -> nn.Conv2d:
    conv = nn.Conv2d(in_chans, linear.out_features, kernel, bias=linear.bias is not None)
    with torch.no_grad():
        # torch.flatten orders a (C, h, w) map channel-major, so the weight row reshapes to (C, h, w).
        conv.weight.copy_(linear.weight.reshape(linear.out_features, in_chans, *kernel))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv


def _batchnorm_2d(bn: nn.BatchNorm1d) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    new.load_state_dict(bn.state_dict())
    return new


def _check_avgpool(model: nn.Module, map_size: tuple[int, int]) -> None:
    pool = getattr(model, "avgpool", None)
    if pool is None:
        return
    size = pool.output_size if isinstance(pool, nn.AdaptiveAvgPool2d) else None
    size = (size, size) if isinstance(size, int) else tuple(size) if size is not None else None
    if size != tuple(map_size):
        raise CnnlabError(
            f"{type(model).__name__}.avgpool resizes the {map_size[0]}x{map_size[1]} feature map at the design input, "
            f"so its classifier cannot become convolutions; convert the model at its design input"
        )


def to_fully_conv(model: nn.Module, input_shape: tuple[int, int, int]) -> FullyConvNet:
    """A copy of ``model`` whose Linear layers are the equivalent convolutions.

    ``input_shape`` (C, H, W) is the design input the model was built for: the first Linear
    becomes a conv with the kernel size of the feature map there, the others 1x1 convs. On a
    (N, C, H, W) image the result gives (N, num_classes, 1, 1) scores equal to the model's; on
    a larger one a (N, num_classes, H', W') map. Raises ``CnnlabError`` for models without a
    ``features``/``classifier`` split (the MLP, the ResNets, which end in global pooling).
    """
    features, classifier = getattr(model, "features", None), getattr(model, "classifier", None)
    if not isinstance(features, nn.Module) or not isinstance(classifier, nn.Sequential):
        raise CnnlabError(
            f"{type(model).__name__} has no 'features' + 'classifier' split, so it has no fully-connected "
            f"classifier to turn into convolutions (the MLP reads flat input; the ResNets end in global pooling)"
        )
    C, H, W = input_shape
    chans, h, w = feature_shape(features, C, (H, W), prefix="features.")
    _check_avgpool(model, (h, w))
    head, first = nn.Sequential(), True
    for name, layer in classifier.named_children():
        if isinstance(layer, nn.Linear):
            if first and layer.in_features != chans * h * w:
                raise CnnlabError(
                    f"classifier.{name} reads {layer.in_features} features but the map at input {C}x{H}x{W} is "
                    f"{chans}x{h}x{w}; pass the input the model was built for"
                )
            kernel, in_chans = ((h, w), chans) if first else ((1, 1), layer.in_features)
            head.add_module(name, _linear_as_conv(layer, in_chans, kernel))
            first = False
        elif isinstance(layer, nn.BatchNorm1d):
            head.add_module(name, _batchnorm_2d(layer))
        elif isinstance(layer, nn.Flatten):
            continue
        elif isinstance(layer, ELEMENTWISE):
            head.add_module(name, copy.deepcopy(layer))
        else:
            raise CnnlabError(f"cannot turn classifier.{name} ({type(layer).__name__}) into a convolution")
    if first:
        raise CnnlabError(f"{type(model).__name__}.classifier has no Linear layer to convert")
    return FullyConvNet(copy.deepcopy(features), head).train(model.training)
