import inspect

import pytest
import torch

from cnnlab.engine.optim import OPTIMIZERS, build_optimizer
from cnnlab.errors import CnnlabError


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_builds_and_steps(name):
    w = torch.nn.Parameter(torch.ones(3))
    opt = build_optimizer(name, [w], lr=0.1, momentum=None, nesterov=None, betas=None, alpha=None, eps=None)
    (w**2).sum().backward()
    opt.step()
    assert (w < 1).all()


def test_defaults_are_torchs_and_options_reach_torch():
    w = [torch.nn.Parameter(torch.ones(1))]
    sgd = build_optimizer("sgd", w, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    assert sgd.defaults["momentum"] == 0.9 and sgd.defaults["nesterov"] and sgd.defaults["weight_decay"] == 5e-4
    rms = build_optimizer("rmsprop", w, lr=0.01)
    assert rms.defaults["alpha"] == 0.99 and rms.defaults["momentum"] == 0
    adam = build_optimizer("adam", w, lr=1e-3, betas=(0.8, 0.9))
    assert adam.defaults["betas"] == (0.8, 0.9)


def test_an_option_the_optimizer_does_not_take_is_refused():
    with pytest.raises(CnnlabError, match=r"optimizer 'adam' has no option 'nesterov' \(valid: betas, eps, lr, weight_decay\)"):
        build_optimizer("adam", [torch.nn.Parameter(torch.ones(1))], lr=0.1, nesterov=True)
    with pytest.raises(CnnlabError, match="unknown optimizer 'adma'; did you mean 'adam'"):
        build_optimizer("adma", [], lr=0.1)


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_default_is_torchs_own(name):
    """Options left unset are torch's defaults for that class (adamw decays 0.01, adam 0, ...)."""
    w = [torch.nn.Parameter(torch.ones(1))]
    ours = build_optimizer(name, w, lr=0.01)
    theirs = type(ours)(w, lr=0.01)
    assert ours.defaults == theirs.defaults


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_option_reaches_torch(name):
    """Each keyword the builder takes lands in the torch optimizer, under the same name."""
    changed = {"weight_decay": 0.003, "momentum": 0.7, "nesterov": True, "betas": (0.8, 0.95), "eps": 1e-5,
               "alpha": 0.9}
    keys = set(inspect.signature(OPTIMIZERS.get(name)).parameters) - {"params", "lr"}
    assert keys <= set(changed), f"give {keys - set(changed)} a changed value here"
    options = {k: changed[k] for k in keys}
    opt = build_optimizer(name, [torch.nn.Parameter(torch.ones(1))], lr=0.01, **options)
    assert {k: opt.defaults[k] for k in options} == options and opt.defaults["lr"] == 0.01


@pytest.mark.parametrize("decay_bias_and_norm", [True, False])
def test_weight_decay_can_spare_biases_and_norm_parameters(decay_bias_and_norm):
    """With decay_bias_and_norm false only conv and linear weights decay (timm's filter_bias_and_bn):
    with zero gradients, one SGD step multiplies each decayed tensor by 1 - lr * wd and leaves the rest."""
    from cnnlab.engine.model_setup import parameter_groups

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(), torch.nn.Linear(2, 3))
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = build_optimizer("sgd", parameter_groups(model, decay_bias_and_norm=decay_bias_and_norm), lr=0.5,
                          weight_decay=0.1)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for name, p in model.named_parameters():
        decayed = decay_bias_and_norm or name in ("0.weight", "3.weight")
        torch.testing.assert_close(p.detach(), before[name] * (0.95 if decayed else 1.0))
