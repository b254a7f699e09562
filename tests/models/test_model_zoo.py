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
    with pytest.raises(CnnlabError, match="'fc_dim' takes layer sizes of at least 1, got 0"):
        build_model("convnet", fc_dim=0)  # the boundary: a layer of no units
    with pytest.raises(CnnlabError, match=r"'hidden' takes layer sizes of at least 1, got \[64, 0\]"):
        build_model("mlp", hidden=[64, 0])
    with pytest.raises(CnnlabError, match=r"'hidden' takes layer sizes of at least 1, got \[64, 'a'\]"):
        build_model("mlp", hidden=[64, "a"])
    for scale in (0, -0.01, "big", True):
        with pytest.raises(CnnlabError, match="'weight_scale' must be a positive number"):
            build_model("mlp", weight_scale=scale)
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


def test_mlp_weight_scale_draws_every_weight_from_a_gaussian_of_that_std():
    """ENPM 703's weight_scale: W ~ N(0, scale^2), b = 0 in every layer, the head included."""
    torch.manual_seed(0)
    layers = [m for m in build_model("mlp", weight_scale=0.05).modules() if isinstance(m, nn.Linear)]
    assert len(layers) == 3
    for layer in layers:  # 784x256, 256x128, 128x10 weights: std within 3% (the 1,280 of the head: 6%)
        assert layer.weight.std().item() == pytest.approx(0.05, rel=0.03 if layer.weight.numel() > 10_000 else 0.06)
        assert abs(layer.weight.mean().item()) < 0.005
        assert torch.count_nonzero(layer.bias) == 0
    default = build_model("mlp").hidden.fc1[0]  # torch's Kaiming-uniform: bound 1/sqrt(784), std 0.0206
    assert default.weight.std().item() == pytest.approx(1 / 784 ** 0.5 / 3 ** 0.5, rel=0.03)


@pytest.mark.parametrize("name", [n for n in MODELS.names() if "dropout" in MODELS.get(n).options()])
def test_the_dropout_option_reaches_every_dropout_layer(name):
    with torch.device("meta"):
        model = build_model(name, dropout=0.37)
    layers = [m for m in model.modules() if isinstance(m, nn.Dropout | nn.Dropout2d)]
    assert layers and all(m.p == 0.37 for m in layers), [m.p for m in layers]


@pytest.mark.parametrize("name", [n for n in MODELS.names() if "activation" in MODELS.get(n).options()])
def test_the_activation_option_reaches_every_activation(name):
    """activation=tanh leaves no ReLU behind and puts a Tanh wherever the default build has a ReLU."""
    with torch.device("meta"):
        relu, tanh = build_model(name), build_model(name, activation="tanh")
    count = sum(isinstance(m, nn.ReLU) for m in relu.modules())
    assert count > 0 and not any(isinstance(m, nn.ReLU) for m in tanh.modules())
    assert sum(isinstance(m, nn.Tanh) for m in tanh.modules()) == count


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_takes_a_non_square_input(name):
    """H and W are not interchangeable: an input 8 pixels wider than tall builds and runs (shapes only, on meta)."""
    C, H, W = MODELS.get(name).default_input
    with torch.device("meta"):
        model = build_model(name, input_size=(H, W + 8))
        out = model(torch.empty(2, C, H, W + 8))
    assert out.shape == (2, MODELS.get(name).default_classes)


def _copy_block_into_torchvision(block: nn.Module, stride: int) -> nn.Module:
    from torchvision.models.resnet import BasicBlock as TorchvisionBlock

    downsample = None if isinstance(block.shortcut, nn.Identity) else block.shortcut
    theirs = TorchvisionBlock(block.conv1.in_channels, block.conv1.out_channels, stride=stride, downsample=downsample)
    theirs.load_state_dict({k.replace("shortcut.", "downsample."): v for k, v in block.state_dict().items()})
    return theirs


@pytest.mark.parametrize("stage, stride", [("layer1", 1), ("layer2", 2), ("layer3", 2)])
def test_resnet_blocks_compute_torchvisions_basic_block(stage, stride):
    """He et al. 2016 fig. 2 as torchvision writes it: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)),
    with the stride in the first block of layer2 and layer3 (32x32 -> 16x16 -> 8x8)."""
    torch.manual_seed(0)
    model = build_model("resnet20").eval()
    block = getattr(model, stage)[0]
    x = torch.randn(2, block.conv1.in_channels, 16, 16)
    with torch.no_grad():
        for bn in (m for m in block.modules() if isinstance(m, nn.BatchNorm2d)):  # statistics away from 0 and 1
            bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2.0), bn.weight.uniform_(0.5, 1.5)
        ours = block(x)
        theirs = _copy_block_into_torchvision(block, stride).eval()(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    assert ours.shape == (2, block.conv2.out_channels, 16 // stride, 16 // stride)


@pytest.mark.parametrize("name", ["resnet20", "vgg11"])
def test_convs_start_from_he_init_with_fan_out(name):
    """torchvision's init for both families: kaiming_normal_(mode='fan_out', nonlinearity='relu'), so each
    conv weight has std sqrt(2 / fan_out), fan_out = out_channels * kh * kw (torch's own fan formula)."""
    torch.manual_seed(0)
    model = build_model(name)
    for conv_name, conv in ((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)):
        _, fan_out = nn.init._calculate_fan_in_and_fan_out(conv.weight)
        expected = nn.init.calculate_gain("relu") / fan_out**0.5
        assert conv.weight.std().item() == pytest.approx(expected, rel=0.15), conv_name
    if name.startswith("vgg"):  # and torchvision's vgg.py Linear init: N(0, 0.01), zero bias
        for fc in (m for m in model.modules() if isinstance(m, nn.Linear)):
            assert fc.weight.std().item() == pytest.approx(0.01, rel=0.15) and not fc.bias.any()


# Layers in the order the forward pass calls them (Identity placeholders skipped), as the labs describe each net.
POOL_RELU = "conv relu pool"
LAYOUTS = {
    "simple_nn": "conv relu pool conv relu pool fc relu fc relu fc",  # ECE 661 HW2 lab 1
    "simple_nn_bn": "conv bn relu pool conv bn relu pool fc relu fc relu fc",  # lab 2(b-i)
    "simple_nn_bn_swish": "conv bn swish pool conv bn swish pool fc swish fc swish fc",  # lab 2(b-iii)
    "convnet": f"{POOL_RELU} {POOL_RELU} {POOL_RELU} fc relu fc",  # Practical Work 1cd, section 2
    "convnet_dropout": f"{POOL_RELU} {POOL_RELU} {POOL_RELU} drop fc relu drop fc",  # section 3.4
    "convnet_bn": "conv bn relu pool conv bn relu pool conv bn relu pool drop fc relu drop fc",  # section 3.5
    "lenet": f"{POOL_RELU} {POOL_RELU} fc relu fc",  # CM2003 lab 2 task 5
    "lenet5": f"{POOL_RELU} {POOL_RELU} fc relu fc relu fc",  # LeCun et al. 1998, ReLU and max pooling
    "alexnet_small": f"{POOL_RELU} {POOL_RELU} conv relu conv relu {POOL_RELU} fc relu fc relu fc",  # task 6
    "simplenet": "conv pool relu conv pool relu fc relu fc",  # CS 6476 part 5: pool before ReLU
    "simplenet_dropout": "conv pool relu conv pool relu drop fc relu fc",  # part 7
    "enpm_open": "conv bn relu pool conv bn relu pool fc relu drop fc relu drop fc",  # ENPM 703 part 5
    "vgg_mini": "conv bn relu pool conv bn relu pool conv bn relu pool fc",
    "mlp": "fc relu fc relu fc",
    # airbench94: whitening conv, then ConvGroups conv pool bn act conv bn act, global max pool, linear
    "fastnet": "conv relu" + " conv pool bn relu conv bn relu" * 3 + " pool fc",
}
SHORT = {nn.Conv2d: "conv", nn.Linear: "fc", nn.ReLU: "relu", nn.SiLU: "swish", nn.MaxPool2d: "pool",
         nn.BatchNorm2d: "bn", nn.Dropout: "drop"}


def _called_layers(model: nn.Module, shape: tuple[int, int, int]) -> str:
    called: list[str] = []
    leaves = [m for m in model.modules() if not list(m.children()) and not isinstance(m, nn.Identity)]
    hooks = [m.register_forward_hook(lambda m, a, out: called.append(SHORT[type(m)])) for m in leaves]
    with torch.device("meta"):
        model(torch.empty(1, *shape))
    for hook in hooks:
        hook.remove()
    return " ".join(called)


def _vgg_layout(name: str) -> str:
    """torchvision's features for the same configuration, then the CIFAR classifier of vgg.py's docstring."""
    with torch.device("meta"):
        features = getattr(torchvision.models, name)(weights=None).features
    return _called_layers(features, (3, 32, 32)) + " drop fc relu drop fc relu fc"


@pytest.mark.parametrize("name", [n for n in MODELS.names() if not n.startswith(("tv_", "resnet"))])
def test_the_forward_pass_calls_the_labs_layers_in_order(name):
    """Catches a dropped, doubled or misplaced layer that leaves the parameter count as it was
    (ResNet blocks are checked against torchvision's BasicBlock; the tv_ nets are torchvision's)."""
    expected = _vgg_layout(name) if name.startswith("vgg") and name != "vgg_mini" else LAYOUTS[name]
    with torch.device("meta"):
        model = build_model(name)
    assert _called_layers(model, MODELS.get(name).default_input) == expected
