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
