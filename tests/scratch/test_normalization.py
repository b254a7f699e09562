"""Batch, layer, spatial batch and group normalization against PyTorch autograd in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab.scratch import normalization as norm
from cnnlab.scratch.shapes import ShapeError
from tests.scratch.scratch_testing import assert_all_close, assert_close, torch_forward_backward

rng = np.random.default_rng(0)


def _torch_batch_norm(running_mean, running_var, train, momentum=0.1):
    def fn(x, gamma, beta):
        return F.batch_norm(x, running_mean, running_var, gamma, beta, training=train, momentum=momentum, eps=1e-5)
    return fn


@pytest.mark.parametrize("backward", [norm.batchnorm_backward, norm.batchnorm_backward_alt],
                         ids=["step_by_step", "closed_form"])
def test_batchnorm_train_matches_torch(backward):
    x = 3 * rng.standard_normal((16, 7)) + 5
    gamma, beta, dout = rng.standard_normal(7), rng.standard_normal(7), rng.standard_normal((16, 7))
    out, cache, _ = norm.batchnorm_forward(x, gamma, beta, None, train=True)
    running_mean, running_var = torch.zeros(7, dtype=torch.float64), torch.ones(7, dtype=torch.float64)
    ref_out, ref_grads = torch_forward_backward(_torch_batch_norm(running_mean, running_var, True),
                                                [x, gamma, beta], dout)
    assert_close(out, ref_out, what="out")
    assert_all_close(backward(dout, cache), ref_grads, names="dx dgamma dbeta")


def test_batchnorm_running_stats_follow_torch_over_several_steps_then_test_mode():
    gamma, beta = rng.standard_normal(5), rng.standard_normal(5)
    running_mean, running_var = torch.zeros(5, dtype=torch.float64), torch.ones(5, dtype=torch.float64)
    stats = None
    for _ in range(4):
        x = 2 * rng.standard_normal((10, 5)) + 1
        _, _, stats = norm.batchnorm_forward(x, gamma, beta, stats, train=True, momentum=0.3)
        F.batch_norm(torch.tensor(x), running_mean, running_var, training=True, momentum=0.3)  # updates in place
    assert_close(stats.mean, running_mean.numpy(), what="running mean")
    assert_close(stats.var, running_var.numpy(), what="running var (unbiased, as torch)")
    x, dout = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
    out, cache, same = norm.batchnorm_forward(x, gamma, beta, stats, train=False)
    assert same is stats
    ref_out, ref_grads = torch_forward_backward(_torch_batch_norm(running_mean, running_var, False),
                                                [x, gamma, beta], dout)
    assert_close(out, ref_out, what="test-mode out")
    for backward in (norm.batchnorm_backward, norm.batchnorm_backward_alt):
        assert_all_close(backward(dout, cache), ref_grads, names="dx dgamma dbeta")


def test_batchnorm_normalizes_each_feature():
    x = rng.standard_normal((200, 3)) * [1, 10, 100] + [0, -5, 50]
    out, _, _ = norm.batchnorm_forward(x, np.ones(3), np.zeros(3), None, train=True)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-3)


def test_layernorm_matches_torch():
    x, gamma, beta = rng.standard_normal((6, 11)) * 4 + 2, rng.standard_normal(11), rng.standard_normal(11)
    dout = rng.standard_normal((6, 11))
    out, cache = norm.layernorm_forward(x, gamma, beta)
    ref_out, ref_grads = torch_forward_backward(lambda x, g, b: F.layer_norm(x, (11,), g, b, eps=1e-5),
                                                [x, gamma, beta], dout)
    assert_close(out, ref_out, what="out")
    assert_all_close(norm.layernorm_backward(dout, cache), ref_grads, names="dx dgamma dbeta")


@pytest.mark.parametrize("train", [True, False])
def test_spatial_batchnorm_matches_torch(train):
    x = rng.standard_normal((4, 3, 5, 6)) * 2 + 1
    gamma, beta, dout = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal((4, 3, 5, 6))
    stats = norm.BatchNormStats(rng.standard_normal(3), rng.random(3) + 0.5)
    out, cache, new_stats = norm.spatial_batchnorm_forward(x, gamma, beta, stats, train=train)
    running_mean, running_var = torch.tensor(stats.mean), torch.tensor(stats.var)
    ref_out, ref_grads = torch_forward_backward(_torch_batch_norm(running_mean, running_var, train),
                                                [x, gamma, beta], dout)
    assert_close(out, ref_out, what="out")
    assert_all_close(norm.spatial_batchnorm_backward(dout, cache), ref_grads, names="dx dgamma dbeta")
    assert_close(new_stats.mean, running_mean.numpy(), what="running mean")
    assert_close(new_stats.var, running_var.numpy(), what="running var")


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_spatial_groupnorm_matches_torch(groups):
    x = rng.standard_normal((3, 6, 4, 5)) * 3 - 1
    gamma, beta, dout = rng.standard_normal(6), rng.standard_normal(6), rng.standard_normal((3, 6, 4, 5))
    out, cache = norm.spatial_groupnorm_forward(x, gamma, beta, groups)
    ref_out, ref_grads = torch_forward_backward(lambda x, g, b: F.group_norm(x, groups, g, b, eps=1e-5),
                                                [x, gamma, beta], dout)
    assert_close(out, ref_out, what="out")
    assert_all_close(norm.spatial_groupnorm_backward(dout, cache), ref_grads, names="dx dgamma dbeta")


def test_norm_errors():
    with pytest.raises(ShapeError, match=r"gamma must have shape \(D,\) = \(4,\)"):
        norm.batchnorm_forward(np.zeros((3, 4)), np.ones(3), np.zeros(4), None, train=True)
    with pytest.raises(ShapeError, match="at least 2 examples"):
        norm.batchnorm_forward(np.zeros((1, 4)), np.ones(4), np.zeros(4), None, train=True)
    with pytest.raises(ShapeError, match="num_groups must divide the C=6 channels"):
        norm.spatial_groupnorm_forward(np.zeros((2, 6, 3, 3)), np.ones(6), np.zeros(6), 4)
    with pytest.raises(ShapeError, match=r"x must be 4-D \(N, C, H, W\)"):
        norm.spatial_batchnorm_forward(np.zeros((2, 6)), np.ones(6), np.zeros(6), None, train=True)
