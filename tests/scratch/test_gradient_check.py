"""Numerical gradients against closed forms, and the gradcheck suite: every layer and both models."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.scratch import layers
from cnnlab.scratch import gradcheck_suite as suite
from cnnlab.scratch.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error


def test_numerical_gradient_of_a_known_function():
    x = np.random.default_rng(0).standard_normal((3, 4))
    c = np.arange(12.0).reshape(3, 4) - 5
    numeric = eval_numerical_gradient(lambda x: np.sum(c * np.sin(x)), x)
    assert rel_error(numeric, c * np.cos(x)) < 1e-8
    assert x.base is None and np.isfinite(x).all()


def test_numerical_gradient_restores_x_exactly():
    x = np.random.default_rng(1).standard_normal(5)
    before = x.copy()
    eval_numerical_gradient(lambda x: float(np.sum(x**3)), x)
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_array_is_the_vector_jacobian_product():
    rng = np.random.default_rng(2)
    x, dout = rng.standard_normal(6), rng.standard_normal(6)
    numeric = eval_numerical_gradient_array(lambda x: np.exp(x), x, dout)
    assert rel_error(numeric, dout * np.exp(x)) < 1e-8


def test_rel_error():
    assert rel_error(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0
    assert rel_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    assert rel_error(np.array([1e-12]), np.array([0.0])) == pytest.approx(1e-4)  # the 1e-8 floor
    with pytest.raises(ValueError, match="shapes differ"):
        rel_error(np.zeros(2), np.zeros(3))


@pytest.mark.parametrize("seed", [0, 1])
def test_every_layer_and_model_passes_the_gradient_check(seed):
    rows = suite.run_gradient_checks(seed)
    layers_checked = {row.layer.split(" (")[0] for row in rows}
    assert {"affine", "relu", "leaky_relu", "sigmoid", "softmax_loss", "svm_loss", "dropout", "vanilla_dropout",
            "batchnorm", "layernorm", "spatial_batchnorm", "spatial_groupnorm", "conv", "max_pool",
            "affine_batchnorm_relu", "affine_layernorm_relu", "conv_relu_pool", "FullyConnectedNet",
            "ThreeLayerConvNet"} <= layers_checked
    failures = [row for row in rows if not row.rel_error <= suite.THRESHOLD]
    assert not failures, suite.format_table(failures)


def test_the_check_catches_a_wrong_backward():
    # sigmoid's derivative taken as s instead of s(1 - s): the check must flag it
    wrong = lambda dout, cache: dout * cache.out  # noqa: E731
    rows = suite.check_layer("sigmoid", layers.sigmoid_forward, wrong, {"x": np.linspace(-2, 2, 10)},
                             np.random.default_rng(0))
    assert rows[0].rel_error > 1e-2
    assert "FAIL" in suite.format_table(rows)
