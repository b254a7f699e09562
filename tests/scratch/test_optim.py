"""Update rules against torch.optim, step for step on the same gradients, and the Registry error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.scratch import optim
from cnnlab.scratch.gradient_check import rel_error

CASES = [  # (our rule, our config, torch optimizer, its keyword arguments)
    ("sgd", {"lr": 0.1}, torch.optim.SGD, {"lr": 0.1}),
    ("sgd_momentum", {"lr": 0.05, "momentum": 0.9}, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    ("sgd_momentum", {"lr": 0.05, "momentum": 0.8, "nesterov": True}, torch.optim.SGD,
     {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-6}, torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.9, "eps": 1e-6}),
    ("rmsprop", {}, torch.optim.RMSprop, {}),  # both sets of defaults
    ("adam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-7}, torch.optim.Adam,
     {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-7}),
    ("adam", {}, torch.optim.Adam, {}),
]


@pytest.mark.parametrize("name, config, torch_optimizer, kwargs", CASES)
def test_update_rule_matches_torch_optim_step_for_step(name, config, torch_optimizer, kwargs):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 5))
    param = torch.tensor(w.copy(), requires_grad=True)
    reference = torch_optimizer([param], **kwargs)
    rule = optim.get_update_rule(name)
    for step in range(25):
        dw = rng.standard_normal(w.shape) * (1 + step % 3)  # gradients that change size and sign
        w, config = rule(w, dw, config)
        param.grad = torch.tensor(dw)
        reference.step()
        assert rel_error(w, param.detach().numpy()) <= 1e-10, f"{name} step {step + 1}"


def test_momentum_matches_torch_when_the_learning_rate_decays():
    # where cs231n's v = mu * v - lr * dw would drift from torch: the lr changes between steps
    rng = np.random.default_rng(1)
    w = rng.standard_normal(6)
    param = torch.tensor(w.copy(), requires_grad=True)
    reference = torch.optim.SGD([param], lr=0.1, momentum=0.9)
    config = {"lr": 0.1, "momentum": 0.9}
    for _ in range(10):
        dw = rng.standard_normal(6)
        w, config = optim.sgd_momentum(w, dw, config)
        param.grad = torch.tensor(dw)
        reference.step()
        config["lr"] *= 0.5
        reference.param_groups[0]["lr"] *= 0.5
    assert rel_error(w, param.detach().numpy()) <= 1e-10


def test_rules_do_not_mutate_the_config_they_are_given():
    config = {"lr": 1e-3}
    _, new = optim.adam(np.ones(3), np.ones(3), config)
    assert config == {"lr": 1e-3}
    assert new["t"] == 1 and new["m"].shape == (3,)


def test_float32_parameters_stay_float32():
    w, dw = np.ones(3, np.float32), np.ones(3, np.float32)
    for name in optim.UPDATE_RULES:
        next_w, config = optim.get_update_rule(name)(w, dw, None)
        next_w, _ = optim.get_update_rule(name)(next_w, dw, config)
        assert next_w.dtype == np.float32, name


def test_unknown_update_rule_lists_the_valid_ones():
    with pytest.raises(CnnlabError, match=r"unknown update rule 'adamw'; did you mean 'adam'\? "
                                          r"\(valid: adam, rmsprop, sgd, sgd_momentum\)"):
        optim.get_update_rule("adamw")


def test_unknown_hyperparameter_is_refused():
    with pytest.raises(CnnlabError, match="update rule 'adam' has no hyperparameter 'learning_rate'"):
        optim.hyperparameters("adam", {"learning_rate": 0.1})
