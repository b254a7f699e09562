"""Receptive fields: the recurrence against hand values and against autograd.

A unit's receptive field is the set of input pixels its value depends on (Practical Work 1cd,
question 7). With every weight positive, every activation an identity and every max pool an
average pool of the same geometry, the gradient of one unit is non-zero on exactly that set,
so autograd measures the field the recurrence predicts.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from cnnlab.analysis.summary import summarize
from cnnlab.models import build_model
from cnnlab.models.layers import ACTIVATIONS

ACTIVATION_TYPES = tuple({type(make()) for make in ACTIVATIONS.values()})

def test_convnet_fields_by_hand():
    """conv k5: r = 1 + 4 = 5 (the report: the field of conv1 is the kernel size); pool 2x2 s2 adds 1 and doubles j."""
    rows = {r.name.split(".")[-1]: r.field for r in summarize(build_model("convnet"), (3, 32, 32)).rows}
    by_hand = {"conv1": (5, 1), "pool1": (6, 2), "conv2": (14, 2), "pool2": (16, 4), "conv3": (32, 4),
               "pool3": (36, 8), "fc4": (36 + 3 * 8, 8)}  # fc4 = a 4x4 conv over the 4x4 map (question 5)
    for name, (size, jump) in by_hand.items():
        assert rows[name].size == (size, size) and rows[name].jump == (jump, jump), name

def _linearized(module: nn.Module) -> nn.Module:
    """A copy whose output is a positive linear function of every pixel in each unit's field."""
    module = copy.deepcopy(module).eval()
    for name, child in list(module.named_modules()):
        parent = module.get_submodule(name.rpartition(".")[0]) if "." in name else module
        leaf = name.rpartition(".")[2]
        if isinstance(child, ACTIVATION_TYPES):
            setattr(parent, leaf, nn.Identity())
        elif isinstance(child, nn.MaxPool2d):
            setattr(parent, leaf, nn.AvgPool2d(child.kernel_size, child.stride, child.padding))
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(0.1)
    return module

def _measured_field(features: nn.Module, input_size: int, in_chans: int) -> tuple[int, float]:
    """Size and centre (rows) of the input region the centre unit of the output depends on."""
    x = torch.ones(1, in_chans, input_size, input_size, requires_grad=True)
    out = _linearized(features)(x)
    h, w = out.shape[-2:]
    out[0, 0, h // 2, w // 2].backward()
    rows = torch.nonzero(x.grad[0].abs().sum(dim=(0, 2)) > 0).flatten()
    return int(rows[-1] - rows[0] + 1), (float(rows[0]) + float(rows[-1]) + 1) / 2

@pytest.mark.parametrize("name, input_size", [
    ("convnet", 96), ("simple_nn", 64), ("simplenet", 96), ("vgg11", 224), ("alexnet_small", 128),
    ("resnet20", 160), ("tv_alexnet", 400),
])
def test_recurrence_agrees_with_autograd(name, input_size):
    model = build_model(name)
    if name.startswith("resnet"):
        features = nn.Sequential(model.conv1, model.bn1, model.act1, model.layer1, model.layer2, model.layer3)
    else:
        features = model.features
    in_chans = next(p for p in features.parameters()).shape[1]
    rows = summarize(features, (in_chans, input_size, input_size)).rows
    field = rows[-1].field
    size, centre = _measured_field(features, input_size, in_chans)
    assert field.size[0] < input_size  # not clipped by the border, so autograd sees all of it
    h = rows[-1].output_shape[-2]
    assert size == field.size[0]
    assert centre == pytest.approx(field.start[0] + (h // 2) * field.jump[0])

def test_residual_sum_takes_the_conv_branch():
    """The 1x1 shortcut of a ResNet block sees less than the two 3x3 convs; the sum sees the union."""
    rows = {r.name: r.field.size[0] for r in summarize(build_model("resnet20"), (3, 32, 32)).rows}
    assert rows["layer2.0.shortcut.0"] == 15 and rows["layer2.0.conv2"] == 21
    assert rows["layer2.0.act2"] == 21
    assert rows["layer3.2.act2"] == 81
