"""Convolution and max pooling, naive and fast, and the sandwich layers, against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.scratch import conv_layers, fast_layers, layer_utils
from cnnlab.scratch.im2col import col2im, im2col
from cnnlab.scratch.shapes import ShapeError
from tests.scratch.scratch_testing import assert_all_close, assert_close, torch_forward_backward

rng = np.random.default_rng(0)

CONV = {"naive": (conv_layers.conv_forward_naive, conv_layers.conv_backward_naive),
        "fast": (fast_layers.conv_forward_fast, fast_layers.conv_backward_fast)}
POOL = {"naive": (conv_layers.max_pool_forward_naive, conv_layers.max_pool_backward_naive),
        "fast": (fast_layers.max_pool_forward_fast, fast_layers.max_pool_backward_fast)}


@pytest.mark.parametrize("impl", ["naive", "fast"])
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", [
    ((2, 3, 7, 7), (4, 3, 3, 3), 1, 1),
    ((2, 3, 7, 9), (4, 3, 3, 5), 2, 1),  # the cs231n benchmark's stride and pad, non-square
    ((3, 2, 8, 8), (5, 2, 2, 2), 2, 0),
    ((1, 1, 5, 5), (2, 1, 5, 5), 1, 2),
])
def test_conv_matches_torch_conv2d(impl, x_shape, w_shape, stride, pad):
    forward, backward = CONV[impl]
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    out, cache = forward(x, w, b, stride=stride, pad=pad)
    dout = rng.standard_normal(out.shape)
    ref_out, ref_grads = torch_forward_backward(lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=pad),
                                                [x, w, b], dout)
    assert_close(out, ref_out, what="out")
    assert_all_close(backward(dout, cache), ref_grads, names="dx dw db")


def test_col2im_is_the_adjoint_of_im2col():
    # <im2col(x), c> == <x, col2im(c)> for every x, c: the definition of the backward of a linear map
    x = rng.standard_normal((2, 3, 9, 9))
    cols = im2col(x, 3, 3, 2, 4, 4)
    c = rng.standard_normal(cols.shape)
    assert np.sum(cols * c) == pytest.approx(np.sum(x * col2im(c, x.shape, 3, 3, 2, 4, 4)), rel=1e-12)


@pytest.mark.parametrize("impl", ["naive", "fast"])
@pytest.mark.parametrize("shape, size, stride", [
    ((2, 3, 8, 8), (2, 2), 2),  # windows tile: the reshape path
    ((2, 3, 7, 7), (3, 3), 2),  # overlapping: the im2col path
    ((2, 2, 6, 7), (2, 3), 1),
])
def test_max_pool_matches_torch_including_ties(impl, shape, size, stride):
    forward, backward = POOL[impl]
    ph, pw = size
    for x in (rng.standard_normal(shape), rng.integers(0, 3, shape).astype(np.float64)):  # the second: many ties
        out, cache = forward(x, pool_height=ph, pool_width=pw, stride=stride)
        dout = rng.standard_normal(out.shape)
        ref_out, (ref_dx,) = torch_forward_backward(lambda x: F.max_pool2d(x, (ph, pw), stride), [x], dout)
        assert_close(out, ref_out, what="out")
        assert_close(backward(dout, cache), ref_dx, what="dx (ties go to the first maximum)")


def test_fast_layers_accept_transposed_views():
    # the fast conv returns a transposed view; pooling and conv must treat any memory layout alike
    x = np.ascontiguousarray(rng.standard_normal((3, 2, 6, 6)).transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    out, cache = fast_layers.max_pool_forward_fast(x)
    dout = rng.standard_normal(out.shape)
    ref_out, (ref_dx,) = torch_forward_backward(lambda x: F.max_pool2d(x, 2, 2), [x], dout)
    assert_close(out, ref_out)
    assert_close(fast_layers.max_pool_backward_fast(dout, cache), ref_dx)


def test_conv_relu_pool_sandwich_matches_torch():
    x, w, b = rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out, cache = layer_utils.conv_relu_pool_forward(x, w, b, pad=1)
    dout = rng.standard_normal(out.shape)
    ref_out, ref_grads = torch_forward_backward(
        lambda x, w, b: F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=1)), 2, 2), [x, w, b], dout)
    assert_close(out, ref_out)
    assert_all_close(layer_utils.conv_relu_pool_backward(dout, cache), ref_grads, names="dx dw db")


def test_conv_bn_relu_pool_sandwich_matches_torch():
    x, w, b = rng.standard_normal((3, 2, 6, 6)), rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    out, cache, _ = layer_utils.conv_bn_relu_pool_forward(x, w, b, gamma, beta, None, train=True, pad=1)
    dout = rng.standard_normal(out.shape)
    stats = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    ref_out, ref_grads = torch_forward_backward(
        lambda x, w, b, g, be: F.max_pool2d(F.relu(F.batch_norm(F.conv2d(x, w, b, padding=1), *stats, g, be,
                                                                training=True)), 2, 2),
        [x, w, b, gamma, beta], dout)
    assert_close(out, ref_out)
    grads = layer_utils.conv_bn_relu_pool_backward(dout, cache)
    assert_all_close([grads[k] for k in ("x", "w", "gamma", "beta")], [ref_grads[i] for i in (0, 1, 3, 4)],
                     names="dx dw dgamma dbeta")
    _assert_both_zero(grads["b"], ref_grads[2])


def _assert_both_zero(ours, theirs):
    """A bias followed by batchnorm has gradient exactly 0 (the batch mean absorbs it): both sides
    hold rounding noise, where a relative error means nothing, so compare with zero instead."""
    scale = 1e-12
    assert np.abs(ours).max() < scale and np.abs(theirs).max() < scale


def test_conv_relu_sandwich_matches_torch():
    x, w, b = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out, cache = layer_utils.conv_relu_forward(x, w, b, stride=2, pad=1)
    dout = rng.standard_normal(out.shape)
    ref_out, ref_grads = torch_forward_backward(lambda x, w, b: F.relu(F.conv2d(x, w, b, stride=2, padding=1)),
                                                [x, w, b], dout)
    assert_close(out, ref_out)
    assert_all_close(layer_utils.conv_relu_backward(dout, cache), ref_grads, names="dx dw db")


@pytest.mark.parametrize("norm", [None, "batchnorm", "layernorm"])
def test_affine_norm_relu_sandwich_matches_torch(norm):
    x, w, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 6)), rng.standard_normal(6)
    gamma, beta, dout = rng.standard_normal(6), rng.standard_normal(6), rng.standard_normal((5, 6))
    out, cache, _ = layer_utils.affine_norm_relu_forward(x, w, b, gamma, beta, norm=norm, train=True)
    stats = torch.zeros(6, dtype=torch.float64), torch.ones(6, dtype=torch.float64)
    normalize = {None: lambda a, g, be: a,
                 "batchnorm": lambda a, g, be: F.batch_norm(a, *stats, g, be, training=True),
                 "layernorm": lambda a, g, be: F.layer_norm(a, (6,), g, be)}[norm]
    inputs = [x, w, b] + ([gamma, beta] if norm else [])
    ref_out, ref_grads = torch_forward_backward(
        lambda x, w, b, g=None, be=None: F.relu(normalize(x @ w + b, g, be)), inputs, dout)
    assert_close(out, ref_out)
    grads = layer_utils.affine_norm_relu_backward(dout, cache)
    names = ["x", "w", "b", "gamma", "beta"][:len(inputs)]
    if norm == "batchnorm":
        _assert_both_zero(grads["b"], ref_grads[2])
        names.remove("b")
        ref_grads.pop(2)
    assert_all_close([grads[k] for k in names], ref_grads, names=" ".join(names))


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", ["naive", "fast"])
def test_conv_that_does_not_tile_states_the_formula(impl):
    forward, _ = CONV[impl]
    with pytest.raises(ShapeError, match=r"\(H \+ 2\*pad - HH\) % stride must be 0, got \(8 \+ 2\*0 - 3\) % 2 = 1"):
        forward(np.zeros((1, 1, 8, 8)), np.zeros((1, 1, 3, 3)), np.zeros(1), stride=2, pad=0)
    with pytest.raises(ShapeError, match=r"\(W \+ 2\*pad - WW\) % stride"):
        forward(np.zeros((1, 1, 7, 8)), np.zeros((1, 1, 3, 3)), np.zeros(1), stride=2, pad=0)


def test_conv_and_pool_shape_errors():
    with pytest.raises(ShapeError, match=r"w must have shape \(F, C, HH, WW\) with C = 3 channels of x"):
        fast_layers.conv_forward_fast(np.zeros((1, 3, 5, 5)), np.zeros((2, 1, 3, 3)), np.zeros(2))
    with pytest.raises(ShapeError, match=r"b must have shape \(F,\) = \(2,\)"):
        fast_layers.conv_forward_fast(np.zeros((1, 1, 5, 5)), np.zeros((2, 1, 3, 3)), np.zeros(3))
    with pytest.raises(ShapeError, match=r"x must be 4-D \(N, C, H, W\)"):
        fast_layers.conv_forward_fast(np.zeros((1, 5, 5)), np.zeros((2, 1, 3, 3)), np.zeros(2))
    with pytest.raises(ShapeError, match=r"\(H - pool_height\) % stride must be 0, got \(5 - 2\) % 2 = 1"):
        fast_layers.max_pool_forward_fast(np.zeros((1, 1, 5, 5)), pool_height=2, pool_width=2, stride=2)
