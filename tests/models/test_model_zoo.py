"""Registry-driven tests (as timm's tests/test_models.py): every registered model is checked.

Parameter counts are checked against numbers we did not compute with this code: the lab
reports' hand counts, the Keras summaries printed by the CM2003 course notebooks, and
torchvision's own metadata.
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models import MODELS, build_model, count_parameters

# name, options, count, where the count comes from
HAND_COUNTS = [
    ("simple_nn", {}, 82_030, "ECE 661 HW2: 608 + 1,168 + 69,240 + 10,164 + 850"),
    ("convnet", {}, 1_191_170, "Practical Work 1cd, question 10"),
    ("resnet20", {}, 272_474, "ECE 661 HW2 lab 3 (1x1 conv + BN shortcuts)"),
    ("resnet20", {"shortcut": "pad"}, 269_722, "He et al. 2016 option A, the paper's 0.27M"),
    ("lenet", {}, 4_213_249, "CM2003 lab 2 task 5 Keras summary, base 32 at 128x128x1"),
    ("alexnet_small", {"n_base": 32}, 2_419_649, "CM2003 lab 2 task 6a Keras summary, n_base 32"),
    ("simplenet", {}, 56_895, "CS 6476 reference layout: 260 + 5,020 + 50,100 + 1,515"),
    ("lenet5", {}, 61_706, "LeNet-5: 156 + 2,416 + 48,120 + 10,164 + 850"),
    ("enpm_open", {}, 582_250, "4,864 + 128 + 18,464 + 64 + 524,544 + 32,896 + 1,290"),
]


@pytest.mark.parametrize("name, options, expected, source", HAND_COUNTS, ids=[c[0] + str(c[1]) for c in HAND_COUNTS])
def test_parameter_count_matches_the_reference(name, options, expected, source):
    with torch.device("meta"):
        assert count_parameters(build_model(name, **options)) == expected, source


@pytest.mark.parametrize("name", ["alexnet", "vgg16", "resnet18"])
def test_torchvision_nets_have_torchvision_counts(name):
    expected = torchvision.models.get_model_weights(name).DEFAULT.meta["num_params"]
    with torch.device("meta"):
        assert count_parameters(build_model(f"tv_{name}")) == expected


@pytest.mark.parametrize("name, tv_name", [("vgg11", "vgg11"), ("vgg13_bn", "vgg13_bn"), ("vgg16", "vgg16"),
                                           ("vgg16_bn", "vgg16_bn")])
def test_vgg_features_are_torchvisions(name, tv_name):
    with torch.device("meta"):
        ours = build_model(name).features
        theirs = getattr(torchvision.models, tv_name)(weights=None).features
    assert count_parameters(ours) == count_parameters(theirs)
    assert [type(m) for m in ours if not isinstance(m, nn.Identity)] == [type(m) for m in theirs]


def _batch(name: str, n: int = 2) -> torch.Tensor:
    return torch.randn(n, *MODELS.get(name).default_input)


@pytest.mark.parametrize("name", MODELS.names())
def test_forward_and_backward_at_the_design_input(name):
    torch.manual_seed(0)
    model = build_model(name)
    # Building probes the feature map size; that must not count as a BatchNorm training step.
    assert all(m.num_batches_tracked == 0 for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    out = model(_batch(name))
    assert out.shape == (2, MODELS.get(name).default_classes)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, f"backward does not reach {no_grad}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


STOCHASTIC = (nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d)


@pytest.mark.parametrize("name", MODELS.names())
def test_train_and_eval_differ_exactly_at_dropout_and_batchnorm(name):
    """Train and eval outputs first part at a dropout or BatchNorm layer, and agree without them."""
    torch.manual_seed(0)
    model = build_model(name)
    x = _batch(name)
    outputs: dict[str, list[torch.Tensor]] = {}
    order: list[str] = []
    hooks = [module.register_forward_hook(lambda m, a, out, name=n: outputs.setdefault(name, []).append(out.clone()))
             for n, module in model.named_modules() if n and not list(module.children())]
    with torch.no_grad():
        model.train()
        train_out = model(x)
        order = list(outputs)
        model.eval()
        eval_out = model(x)
    for hook in hooks:
        hook.remove()
    modules = dict(model.named_modules())
    first = next((n for n in order if not torch.equal(outputs[n][0], outputs[n][1])), None)
    if any(isinstance(m, STOCHASTIC) for m in model.modules()):
        assert first is not None and isinstance(modules[first], STOCHASTIC), f"first difference at {first}"
        assert not torch.equal(train_out, eval_out)
    else:
        assert first is None and torch.equal(train_out, eval_out)


def test_input_too_small_names_the_layer():
    with pytest.raises(CnnlabError, match=r"input 3x4x4 is too small .* 'features.pool3' would be empty"):
        build_model("convnet", input_size=(4, 4))
    with pytest.raises(CnnlabError, match="'features.pool5'"):
        build_model("vgg11", input_size=(16, 16))
    with pytest.raises(CnnlabError, match="too small"):
        build_model("tv_alexnet", input_size=(32, 32))


def test_bad_options_are_one_line_errors_listing_the_valid_ones():
    with pytest.raises(CnnlabError, match=r"no option 'dropot'; did you mean 'dropout'\? \(valid: activation, "):
        build_model("convnet", dropot=0.1)
    with pytest.raises(CnnlabError, match="'dropout' must be a number"):
        build_model("convnet", dropout="high")
    with pytest.raises(CnnlabError, match=r"must be in \[0, 1\)"):
        build_model("vgg11", dropout=1.5)
    with pytest.raises(CnnlabError, match="'fc_dim' takes layer sizes of at least 1, got -5"):
        build_model("convnet", fc_dim=-5)
    with pytest.raises(CnnlabError, match=r"'hidden' takes layer sizes of at least 1, got \[64, 'a'\]"):
        build_model("mlp", hidden=[64, "a"])
    with pytest.raises(CnnlabError, match="unknown activation 'swishh'; did you mean 'swish'"):
        build_model("simple_nn", activation="swishh")
    with pytest.raises(CnnlabError, match="unknown model 'resnet21'"):
        build_model("resnet21")


def test_common_options_change_the_architecture():
    swish = build_model("vgg11", activation="swish", batchnorm=True, width=0.5)
    assert any(isinstance(m, nn.SiLU) for m in swish.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in swish.modules()) == 8  # one per conv of config A
    assert swish.features.conv1_1.out_channels == 32
    assert build_model("resnet20", width=2.0).fc.in_features == 128
    one_logit = build_model("alexnet_small", in_chans=3, input_size=(64, 64), dropout=0.4)
    assert one_logit(torch.randn(2, 3, 64, 64)).shape == (2, 1)
    assert build_model("mlp", hidden=[64], input_size=(8, 8))(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("name", [n for n in MODELS.names() if "dropout" in MODELS.get(n).options()])
def test_the_dropout_option_reaches_every_dropout_layer(name):
    with torch.device("meta"):
        model = build_model(name, dropout=0.37)
    layers = [m for m in model.modules() if isinstance(m, nn.Dropout | nn.Dropout2d)]
    assert layers and all(m.p == 0.37 for m in layers), [m.p for m in layers]
