"""First-order update rules with one contract: ``update(w, dw, config) -> (next_w, config)``.

``config`` holds the hyperparameters and the rule's state for one parameter array (velocity,
moment estimates, step count). A rule never mutates the dict it is given: it returns a new one,
and the caller keeps it for the next step (``Solver`` holds one per parameter). Pass None or a
partial dict on the first step; missing hyperparameters take the defaults below, which are torch's.

Each rule computes exactly what ``torch.optim`` computes (no weight decay, no dampening), so
the tests compare them step for step. Where cs231n's lab code differs, we follow torch:

- sgd_momentum: torch keeps a buffer ``v = momentum * v + dw`` (the first step's buffer is dw
  itself) and steps ``w -= lr * v``. cs231n's ``v = momentum * v - lr * dw; w += v`` is the same
  walk while lr is constant, and drifts from it when lr decays.
- rmsprop: cs231n's decay_rate is torch's ``alpha``; epsilon is added after the square root in
  both, ``w -= lr * dw / (sqrt(s) + eps)``.
- adam: bias-corrected as in Kingma & Ba (2015) and torch, epsilon after the square root of the
  corrected second moment: ``w -= lr * m_hat / (sqrt(v_hat) + eps)``; ``t`` counts from 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.registry import Registry

# Each rule's hyperparameters and their defaults (torch's); anything else in a config is state.
HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "sgd": {"lr": 1e-2},
    "sgd_momentum": {"lr": 1e-2, "momentum": 0.9, "nesterov": False},
    "rmsprop": {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8},
    "adam": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
}

UpdateRule = Callable[[np.ndarray, np.ndarray, "dict[str, Any] | None"], "tuple[np.ndarray, dict[str, Any]]"]
UPDATE_RULES: Registry[UpdateRule] = Registry("update rule")


def get_update_rule(name: str) -> UpdateRule:
    """The rule registered as ``name``; an unknown name lists the valid ones."""
    return UPDATE_RULES.get(name)


def hyperparameters(name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The defaults of rule ``name`` updated with ``overrides``; an unknown key is an error."""
    get_update_rule(name)
    defaults = HYPERPARAMETERS[name]
    for key in overrides or {}:
        if key not in defaults:
            raise CnnlabError(f"update rule '{name}' has no hyperparameter '{key}'{did_you_mean(key, defaults)} "
                              f"(valid: {', '.join(defaults)})")
    return {**defaults, **(overrides or {})}


def _with_defaults(config: dict[str, Any] | None, rule: str) -> dict[str, Any]:
    return {**HYPERPARAMETERS[rule], **(config or {})}  # a new dict: the caller's is left as it was


@UPDATE_RULES.register()
def sgd(w: np.ndarray, dw: np.ndarray, config: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Vanilla stochastic gradient descent: w - lr * dw. Config: lr (1e-2)."""
    config = _with_defaults(config, "sgd")
    return w - config["lr"] * dw, config


@UPDATE_RULES.register()
def sgd_momentum(w: np.ndarray, dw: np.ndarray,
                 config: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """SGD with (heavy-ball or Nesterov) momentum, as ``torch.optim.SGD(momentum=...)``.

    Config: lr (1e-2), momentum (0.9), nesterov (False); state: velocity, shaped as w.
    """
    config = _with_defaults(config, "sgd_momentum")
    velocity = config.get("velocity")
    velocity = dw.copy() if velocity is None else config["momentum"] * velocity + dw
    step = dw + config["momentum"] * velocity if config["nesterov"] else velocity
    return w - config["lr"] * step, {**config, "velocity": velocity}


@UPDATE_RULES.register()
def rmsprop(w: np.ndarray, dw: np.ndarray, config: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """RMSProp (Tieleman & Hinton 2012), as ``torch.optim.RMSprop``: divide the step by a moving
    root mean square of recent gradients.

    Config: lr (1e-2), alpha (0.99, the average's decay), eps (1e-8); state: square_avg, shaped as w.
    """
    config = _with_defaults(config, "rmsprop")
    square_avg = config.get("square_avg")
    square_avg = np.zeros_like(w) if square_avg is None else square_avg
    square_avg = config["alpha"] * square_avg + (1 - config["alpha"]) * dw * dw
    next_w = w - config["lr"] * dw / (np.sqrt(square_avg) + config["eps"])
    return next_w, {**config, "square_avg": square_avg}


@UPDATE_RULES.register()
def adam(w: np.ndarray, dw: np.ndarray, config: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Adam (Kingma & Ba 2015), as ``torch.optim.Adam``: momentum on the gradient (m) and on its
    square (v), both bias-corrected for their zero start.

    Config: lr (1e-3), beta1 (0.9), beta2 (0.999), eps (1e-8); state: m, v (shaped as w), t.
    """
    config = _with_defaults(config, "adam")
    beta1, beta2, t = config["beta1"], config["beta2"], config.get("t", 0) + 1
    m = config.get("m")
    v = config.get("v")
    m = (1 - beta1) * dw if m is None else beta1 * m + (1 - beta1) * dw
    v = (1 - beta2) * dw * dw if v is None else beta2 * v + (1 - beta2) * dw * dw
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    next_w = w - config["lr"] * m_hat / (np.sqrt(v_hat) + config["eps"])
    return next_w, {**config, "m": m, "v": v, "t": t}
