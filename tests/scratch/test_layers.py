"""Dense layers, activations, losses and dropout against PyTorch autograd in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.scratch import layers
from cnnlab.scratch.shapes import ShapeError
from tests.scratch.scratch_testing import assert_all_close, assert_close, torch_forward_backward

rng = np.random.default_rng(0)


def test_affine_matches_torch_linear_on_multi_axis_input():
    x, w, b = rng.standard_normal((4, 2, 3, 5)), rng.standard_normal((30, 7)), rng.standard_normal(7)
    dout = rng.standard_normal((4, 7))
    out, cache = layers.affine_forward(x, w, b)
    ref_out, ref_grads = torch_forward_backward(lambda x, w, b: x.reshape(4, -1) @ w + b, [x, w, b], dout)
    assert_close(out, ref_out, what="out")
    assert_all_close(layers.affine_backward(dout, cache), ref_grads, names="dx dw db")


@pytest.mark.parametrize("name, torch_fn", [
    ("relu", F.relu),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.01)),
    ("sigmoid", torch.sigmoid),
])
def test_activations_match_torch(name, torch_fn):
    x = rng.standard_normal((6, 9)) * 3
    x[0, :3] = [-40.0, 40.0, -745.0]  # sigmoid's tails: no overflow, full relative precision
    dout = rng.standard_normal(x.shape)
    out, cache = getattr(layers, f"{name}_forward")(x)
    ref_out, (ref_dx,) = torch_forward_backward(torch_fn, [x], dout)
    assert_close(out, ref_out, what=f"{name} out")
    assert_close(getattr(layers, f"{name}_backward")(dout, cache), ref_dx, what=f"{name} dx")


def test_leaky_relu_slope_is_used_both_ways():
    x, dout = rng.standard_normal((5, 5)), rng.standard_normal((5, 5))
    out, cache = layers.leaky_relu_forward(x, negative_slope=0.2)
    ref_out, (ref_dx,) = torch_forward_backward(lambda x: F.leaky_relu(x, 0.2), [x], dout)
    assert_close(out, ref_out)
    assert_close(layers.leaky_relu_backward(dout, cache), ref_dx)


def test_softmax_loss_matches_cross_entropy_even_with_huge_scores():
    scores, y = rng.standard_normal((8, 10)) * 5, rng.integers(0, 10, 8)
    scores[0] += 1000  # a naive exp would overflow
    loss, dscores = layers.softmax_loss(scores, y)
    ref_loss, (ref_d,) = torch_forward_backward(lambda s: F.cross_entropy(s, torch.tensor(y)), [scores])
    assert_close(loss, ref_loss, what="loss")
    assert_close(dscores, ref_d, what="dscores")


def test_svm_loss_is_c_times_torch_multi_margin_loss():
    scores, y = rng.standard_normal((8, 6)), rng.integers(0, 6, 8)
    loss, dscores = layers.svm_loss(scores, y)
    ref_loss, (ref_d,) = torch_forward_backward(lambda s: 6 * F.multi_margin_loss(s, torch.tensor(y)), [scores])
    assert_close(loss, ref_loss, what="loss")
    assert_close(dscores, ref_d, what="dscores")


def test_losses_at_a_known_point():
    # all scores equal: softmax gives log(C); every hinge is active with value margin = 1
    scores, y = np.zeros((3, 4)), np.array([0, 1, 3])
    assert layers.softmax_loss(scores, y)[0] == pytest.approx(np.log(4))
    assert layers.svm_loss(scores, y)[0] == pytest.approx(3.0)


# --- dropout: random, so check the statistics and that the backward reuses the forward's mask --


@pytest.mark.parametrize("keep_prob", [0.25, 0.8])
def test_inverted_dropout_statistics_and_mask(keep_prob):
    x = rng.standard_normal((500, 400)) + 3.0
    out, cache = layers.dropout_forward(x, keep_prob, train=True, rng=np.random.default_rng(1))
    kept = out != 0
    n = x.size
    assert abs(kept.mean() - keep_prob) < 5 * np.sqrt(keep_prob * (1 - keep_prob) / n)  # 5 sigma
    np.testing.assert_allclose(out[kept], x[kept] / keep_prob)
    assert abs(out.mean() - x.mean()) < 0.02 * x.mean()  # inverted: the expectation is x
    dout = rng.standard_normal(x.shape)
    dx = layers.dropout_backward(dout, cache)
    np.testing.assert_array_equal(dx != 0, kept)  # the very same mask
    np.testing.assert_allclose(dx[kept], dout[kept] / keep_prob)
    test_out, test_cache = layers.dropout_forward(x, keep_prob, train=False, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(test_out, x)
    np.testing.assert_array_equal(layers.dropout_backward(dout, test_cache), dout)


def test_vanilla_dropout_scales_at_test_time_to_match_training_expectation():
    keep_prob, x = 0.25, rng.standard_normal((500, 400)) + 3.0
    out, cache = layers.vanilla_dropout_forward(x, keep_prob, train=True, rng=np.random.default_rng(2))
    kept = out != 0
    np.testing.assert_array_equal(out[kept], x[kept])  # no rescaling in training
    test_out, test_cache = layers.vanilla_dropout_forward(x, keep_prob, train=False, rng=np.random.default_rng(2))
    np.testing.assert_allclose(test_out, keep_prob * x)
    assert abs(out.mean() - test_out.mean()) < 0.02 * test_out.mean()
    dout = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(layers.vanilla_dropout_backward(dout, cache), dout * kept)
    np.testing.assert_allclose(layers.vanilla_dropout_backward(dout, test_cache), keep_prob * dout)


def test_dropout_expectation_matches_torch_dropout():
    # torch's nn.Dropout(p) is inverted dropout with keep_prob = 1 - p: same mean and same
    # fraction kept, to sampling error, on the same input
    x = torch.ones(400, 500, dtype=torch.float64)
    theirs = F.dropout(x, p=0.3, training=True).numpy()
    ours, _ = layers.dropout_forward(x.numpy(), 0.7, train=True, rng=np.random.default_rng(3))
    assert abs(ours.mean() - theirs.mean()) < 0.01
    assert abs((ours != 0).mean() - (theirs != 0).mean()) < 0.01
    np.testing.assert_allclose(np.unique(ours), np.unique(theirs))  # both are 0 or 1 / 0.7


def test_dropout_masks_repeat_with_the_same_seed():
    x = rng.standard_normal((20, 20))
    a, _ = layers.dropout_forward(x, 0.5, train=True, rng=np.random.default_rng(7))
    b, _ = layers.dropout_forward(x, 0.5, train=True, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


def test_float32_stays_float32():
    x, w, b = (a.astype(np.float32) for a in (rng.standard_normal((4, 5)), rng.standard_normal((5, 3)),
                                              rng.standard_normal(3)))
    out, cache = layers.affine_forward(x, w, b)
    assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in layers.affine_backward(out, cache))
    assert layers.dropout_forward(x, 0.5, train=True, rng=rng)[0].dtype == np.float32
    assert layers.softmax_loss(out, np.array([0, 1, 2, 0]))[1].dtype == np.float32


# --- bad input: one clear line, not a broadcast traceback ---------------------------------------


def test_affine_shape_errors_name_the_argument_and_expected_shape():
    with pytest.raises(ShapeError, match=r"affine_forward: w must have shape \(D, M\) = \(6, M\)"):
        layers.affine_forward(np.zeros((2, 3, 2)), np.zeros((5, 4)), np.zeros(4))
    with pytest.raises(ShapeError, match=r"b must have shape \(M,\) = \(4,\), got \(3,\)"):
        layers.affine_forward(np.zeros((2, 5)), np.zeros((5, 4)), np.zeros(3))


def test_loss_label_errors():
    with pytest.raises(ShapeError, match=r"y must be integer labels of shape \(N,\) = \(3,\)"):
        layers.softmax_loss(np.zeros((3, 4)), np.zeros(2, dtype=int))
    with pytest.raises(ShapeError, match=r"labels in y must lie in \[0, 4\)"):
        layers.svm_loss(np.zeros((3, 4)), np.array([0, 4, 1]))
    with pytest.raises(ShapeError, match="keep_prob"):
        layers.dropout_forward(np.zeros(3), 0.0, train=True, rng=rng)
