"""torchvision's AlexNet, VGG-16 and ResNet-18, for fine-tuning (CS 6476 project 2, part 8).

CS 6476 fine-tunes an ImageNet-pretrained AlexNet on 15 scene classes (the report's
0.945/0.851 train/val accuracy); Practical Work 1cd discusses VGG16 at other input sizes.
The nets are torchvision's own (``weights=None``), so their parameter counts are
torchvision's: 61,100,840 / 138,357,544 / 11,689,512 at 1,000 classes. Options:

* ``weights``: a local ``.pth``/``.pt``/``.safetensors`` state dict, or ``imagenet`` for
  torchvision's hub download (a one-line error when offline). A file may hold the ImageNet
  layout (1,000 classes, 3 channels), which is loaded before the head is replaced, or the
  layout of this very model (a fine-tuned checkpoint), which is loaded after.
* ``num_classes`` != 1000 replaces the last Linear; ``in_chans`` != 3 replaces the first conv
  and, with pretrained weights, gives every input channel the mean of the RGB filters times
  3/in_chans, so a gray image repeated over the channels gets the pretrained response (timm's
  ``adapt_input_conv`` does the same for one channel).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import importlib

import torch
from torch import nn

from cnnlab.errors import CnnlabError, first_line
from cnnlab.models.layers import feature_shape
from cnnlab.models.registry import register_model
from cnnlab.models.weights import load_matching_state_dict, read_state_dict


def tv_models():
    """``torchvision.models``, imported when one of these nets is built: importing torchvision
    costs 1.7 s on the 2-core CPU, and every other model and command does without it."""
    return importlib.import_module("torchvision.models")


class Arch(NamedTuple):
    builder: str  # function name in torchvision.models
    first_conv: str  # submodule path of the conv that reads the image
    head: str  # submodule path of the last Linear
    body: tuple[str, ...]  # submodules that make the feature map, to check the input size


ARCHS = {
    "alexnet": Arch("alexnet", "features.0", "classifier.6", ("features",)),
    "vgg16": Arch("vgg16", "features.0", "classifier.6", ("features",)),
    "resnet18": Arch("resnet18", "conv1", "fc",
                     ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")),
}


def imagenet_state_dict(arch: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights for ``arch``, from the hub cache or downloaded into it."""
    weights = tv_models().get_model_weights(arch).DEFAULT
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as err:  # URLError offline, HTTPError, hash mismatch, ...
        reason = first_line(err)
        raise CnnlabError(
            f"cannot download the ImageNet weights of {arch} from {weights.url} ({reason}); "
            f"fetch the file where the network allows and pass weights=PATH"
        ) from err


def _replace(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, name, module)


def _fits(model: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    own = model.state_dict()
    return own.keys() == state.keys() and all(own[k].shape == state[k].shape for k in own)


def _adapt_first_conv(model: nn.Module, path: str, in_chans: int, pretrained: bool) -> None:
    old = model.get_submodule(path)
    new = nn.Conv2d(in_chans, old.out_channels, old.kernel_size, old.stride, old.padding, bias=old.bias is not None)
    if pretrained:
        with torch.no_grad():
            mean = old.weight.mean(dim=1, keepdim=True)  # (out, 1, kh, kw)
            new.weight.copy_((mean * 3 / in_chans).expand_as(new.weight))
            if old.bias is not None:
                new.bias.copy_(old.bias)
    _replace(model, path, new)


def build_torchvision(
    arch: str, *, in_chans: int, num_classes: int, input_size: tuple[int, int], weights: str | None
) -> nn.Module:
    """torchvision's ``arch`` with its head and first conv fitted to the data, weights loaded."""
    spec = ARCHS[arch]
    if weights is not None and not isinstance(weights, str):
        raise CnnlabError(f"model option 'weights' must be a file path or 'imagenet', got {weights!r}")
    model = getattr(tv_models(), spec.builder)(weights=None)
    state, source = None, ""
    if weights:
        state = imagenet_state_dict(arch) if weights == "imagenet" else read_state_dict(weights)
        source = f"the ImageNet weights of {arch}" if weights == "imagenet" else f"weights file '{weights}'"
    pretrained = state is not None and _fits(model, state)
    if pretrained:  # the ImageNet layout: load, then fit the head and first conv
        load_matching_state_dict(model, state, source=source)
        state = None
    if in_chans != 3:
        _adapt_first_conv(model, spec.first_conv, in_chans, pretrained)
    head = model.get_submodule(spec.head)
    if num_classes != head.out_features:
        _replace(model, spec.head, nn.Linear(head.in_features, num_classes))
    if state is not None:  # a checkpoint of this very model; mismatches are listed key by key
        load_matching_state_dict(model, state, source=source)
    # An input too small for the net is refused here, naming the layer whose output would be empty.
    if len(spec.body) == 1:
        feature_shape(model.get_submodule(spec.body[0]), in_chans, input_size, prefix=f"{spec.body[0]}.")
    else:
        body = nn.Sequential(OrderedDict((name, model.get_submodule(name)) for name in spec.body))
        feature_shape(body, in_chans, input_size)
    return model


@register_model(input=(3, 224, 224), num_classes=1000, source="torchvision AlexNet; CS 6476 project 2, part 8")
def tv_alexnet(*, in_chans=3, num_classes=1000, input_size=(224, 224), weights=None):
    return build_torchvision("alexnet", in_chans=in_chans, num_classes=num_classes, input_size=input_size,
                             weights=weights)


@register_model(input=(3, 224, 224), num_classes=1000, source="torchvision VGG-16; Practical Work 1cd, question 4")
def tv_vgg16(*, in_chans=3, num_classes=1000, input_size=(224, 224), weights=None):
    return build_torchvision("vgg16", in_chans=in_chans, num_classes=num_classes, input_size=input_size,
                             weights=weights)


@register_model(input=(3, 224, 224), num_classes=1000, source="torchvision ResNet-18 (He et al. 2016)")
def tv_resnet18(*, in_chans=3, num_classes=1000, input_size=(224, 224), weights=None):
    return build_torchvision("resnet18", in_chans=in_chans, num_classes=num_classes, input_size=input_size,
                             weights=weights)
