"""Fully-convolutional conversion (Practical Work 1cd, questions 4-6), checked against the original nets."""

from __future__ import annotations

import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.models import MODELS, build_model, to_fully_conv
from cnnlab.models.layers import feature_shape

# Nets without a flattened-feature classifier: the MLP reads the flat image; the ResNets pool globally.
NOT_CONVERTIBLE = {"mlp", "tv_resnet18"} | set(MODELS.names("resnet*"))
CONVERTIBLE = [n for n in MODELS.names() if n not in NOT_CONVERTIBLE]


@pytest.mark.parametrize("name", CONVERTIBLE)
def test_same_scores_at_the_design_input_and_a_score_map_on_a_larger_one(name):
    torch.manual_seed(0)
    entry = MODELS.get(name)
    C, H, W = entry.default_input
    model = build_model(name).eval()
    fully_conv = to_fully_conv(model, entry.default_input)
    x = torch.randn(2, C, H, W)
    with torch.no_grad():
        expected, scores = model(x), fully_conv(x)
    assert scores.shape == (2, entry.default_classes, 1, 1)
    difference = (scores.flatten(1) - expected).abs().max()
    assert difference <= 1e-5
    # Relative to the scores' scale too: VGG's N(0, 0.01) classifier init gives scores near 1e-3.
    assert difference <= 1e-4 * expected.abs().max() + 1e-7
    # Larger input: one score vector per position of the first FC's kernel on the feature map.
    if H > 64:
        return  # the 224x224 torchvision nets and the 128x128 CM2003 nets: checked at the design size only
    _, h, w = feature_shape(model.features, C, (H, W))
    _, big_h, big_w = feature_shape(model.features, C, (2 * H, 2 * W))
    with torch.no_grad():
        score_map = fully_conv(torch.randn(1, C, 2 * H, 2 * W))
    assert score_map.shape == (1, entry.default_classes, big_h - h + 1, big_w - w + 1)


def test_each_score_is_the_original_net_on_one_window():
    """simple_nn has no padding and a total stride of 4, so score (i, j) is the net on crop (4i, 4j)."""
    torch.manual_seed(0)
    model = build_model("simple_nn").eval()
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        score_map = to_fully_conv(model, (3, 32, 32))(x)  # (1, 10, 3, 3): features 16x8x8, kernel 6x6
        assert score_map.shape == (1, 10, 3, 3)
        for i in range(3):
            for j in range(3):
                crop = x[:, :, 4 * i:4 * i + 32, 4 * j:4 * j + 32]
                torch.testing.assert_close(score_map[:, :, i, j], model(crop), rtol=1e-4, atol=1e-5)


def test_convnet_on_64x64_gives_a_5x5_map_and_keeps_the_weights():
    model = build_model("convnet")
    fully_conv = to_fully_conv(model, (3, 32, 32))
    assert fully_conv.classifier.fc4.kernel_size == (4, 4)  # the 64x4x4 map of the report's question 10
    assert fully_conv.classifier.fc5.kernel_size == (1, 1)
    assert sum(p.numel() for p in fully_conv.parameters()) == 1_191_170
    assert fully_conv(torch.randn(1, 3, 64, 64)).shape == (1, 10, 5, 5)


def test_a_non_square_design_input_gives_a_non_square_kernel():
    """convnet built for 3x32x48: features 64x4x6, so fc4 becomes a 4x6 conv (height first, as torch.flatten)."""
    torch.manual_seed(0)
    model = build_model("convnet", input_size=(32, 48)).eval()
    fully_conv = to_fully_conv(model, (3, 32, 48))
    assert fully_conv.classifier.fc4.kernel_size == (4, 6)
    x = torch.randn(2, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(fully_conv(x).flatten(1), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(NOT_CONVERTIBLE))
def test_nets_without_an_fc_classifier_are_refused_in_one_line(name):
    with torch.device("meta"):
        model = build_model(name)
    with pytest.raises(CnnlabError, match="has no 'features' \\+ 'classifier' split"):
        to_fully_conv(model, MODELS.get(name).default_input)


def test_wrong_design_input_is_refused():
    with pytest.raises(CnnlabError, match="classifier.fc4 reads 1024 features but the map at input 3x64x64 is 64x8x8"):
        to_fully_conv(build_model("convnet"), (3, 64, 64))
