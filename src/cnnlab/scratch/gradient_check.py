"""Numerical gradients by centred differences, and the relative error to compare them with.

df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / 2h has error O(h^2) (a one-sided difference has O(h)),
but rounding adds about eps * |f| / h, so in float64 (eps 2.2e-16, cs231n's h = 1e-5) the
estimate is off by ~1e-11 in absolute terms. That is plenty for large entries, but cs231n's
elementwise ``rel_error`` turns it into more than 1e-7 on entries below ~1e-4, which random
networks always have. So both functions keep the dtype of ``x``: evaluated in np.longdouble
(80-bit on x86, eps 1.1e-19) the same differences are ~1e-13 off (``gradcheck_suite`` does this).
These run one coordinate at a time: use them on small inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def eval_numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Gradient of a scalar function f at x, same shape as x. ``x`` is perturbed in place and
    restored exactly, so f may close over it."""
    grad = np.zeros(x.shape, np.result_type(x.dtype, np.float64))
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + h
        f_plus = f(x)
        x[index] = old - h
        f_minus = f(x)
        x[index] = old
        grad[index] = (f_plus - f_minus) / (2 * h)
    return grad


def eval_numerical_gradient_array(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dout: np.ndarray,
                                  h: float = 1e-5) -> np.ndarray:
    """Gradient of sum(f(x) * dout) at x, for an array-valued f: what a layer's backward
    computes when given upstream gradient ``dout``. Same shape as x."""
    dtype = np.result_type(x.dtype, np.float64)
    grad = np.zeros(x.shape, dtype)
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + h
        f_plus = np.array(f(x), dtype=dtype)  # a copy: f may return a view of a reused buffer
        x[index] = old - h
        f_minus = np.array(f(x), dtype=dtype)
        x[index] = old
        grad[index] = np.sum((f_plus - f_minus) * dout) / (2 * h)
    return grad


def rel_error(x: np.ndarray, y: np.ndarray) -> float:
    """The largest elementwise relative error, max |x - y| / max(1e-8, |x| + |y|), as cs231n.
    The 1e-8 floor keeps entries that are both (near) zero from dividing by zero."""
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape:
        raise ValueError(f"rel_error: shapes differ, {x.shape} vs {y.shape}")
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))
