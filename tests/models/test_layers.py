"""The shared model pieces against torch's own functions and defaults."""

import pytest
import torch
import torch.nn.functional as F

from cnnlab.models import build_model
from cnnlab.models.layers import ACTIVATIONS, make_activation, scaled

# Each recipe name and the torch function it must compute, at torch's default settings.
REFERENCE = {"relu": F.relu, "leaky_relu": F.leaky_relu, "swish": F.silu, "silu": F.silu, "gelu": F.gelu,
             "elu": F.elu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_each_activation_is_torchs_function_at_its_defaults(name):
    x = torch.linspace(-4, 4, 101)
    expected = REFERENCE[name](x)
    torch.testing.assert_close(make_activation(name)(x.clone()), expected, rtol=0, atol=0)


def test_width_rounds_to_the_nearest_channel_count():
    assert [scaled(c, 0.3) for c in (32, 64, 10, 2)] == [10, 19, 3, 1]  # 9.6, 19.2, 3.0, 0.6 -> at least 1
    model = build_model("convnet", width=0.3)
    assert [model.features.conv1.out_channels, model.features.conv2.out_channels] == [10, 19]
