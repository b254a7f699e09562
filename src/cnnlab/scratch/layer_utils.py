"""Sandwich layers: the common stacks of one forward and one backward each, built from the
layers above them (cs231n's ``layer_utils.py``). Each cache is a NamedTuple of its parts' caches.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnnlab.errors import unknown_name
from cnnlab.scratch.fast_layers import (
    FastConvCache,
    FastPoolCache,
    conv_backward_fast,
    conv_forward_fast,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from cnnlab.scratch.layers import (
    ActivationCache,
    AffineCache,
    affine_backward,
    affine_forward,
    relu_backward,
    relu_forward,
)
from cnnlab.scratch.normalization import (
    BatchNormStats,
    NormCache,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)

NORMALIZATIONS = ("batchnorm", "layernorm")


def check_normalization(norm: str | None) -> None:
    """None or one of NORMALIZATIONS, else the standard unknown-name error."""
    if norm is not None and norm not in NORMALIZATIONS:
        raise unknown_name("normalization", norm, NORMALIZATIONS)


# --- affine - relu and affine - norm - relu ----------------------------------------------------


class AffineNormReluCache(NamedTuple):
    affine: AffineCache
    norm: NormCache | None  # None without normalization
    relu: ActivationCache
    norm_kind: str | None


def affine_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, AffineNormReluCache]:
    """relu(x W + b). x: (N, d_1, ..., d_k); w: (D, M); b: (M,). Returns out (N, M)."""
    a, affine_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, AffineNormReluCache(affine_cache, None, relu_cache, None)


def affine_norm_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, gamma: np.ndarray | None,
                             beta: np.ndarray | None, *, norm: str | None, stats: BatchNormStats | None = None,
                             train: bool = True) -> tuple[np.ndarray, AffineNormReluCache, BatchNormStats | None]:
    """relu(norm(x W + b)), norm one of None, 'batchnorm', 'layernorm'; gamma, beta: (M,).

    Returns out (N, M), cache and the batchnorm running statistics (``stats`` unchanged, None
    included, for the other norms).
    """
    check_normalization(norm)
    a, affine_cache = affine_forward(x, w, b)
    norm_cache = None
    if norm == "batchnorm":
        a, norm_cache, stats = batchnorm_forward(a, gamma, beta, stats, train=train)
    elif norm == "layernorm":
        a, norm_cache = layernorm_forward(a, gamma, beta)
    out, relu_cache = relu_forward(a)
    return out, AffineNormReluCache(affine_cache, norm_cache, relu_cache, norm), stats


def affine_norm_relu_backward(dout: np.ndarray, cache: AffineNormReluCache) -> dict[str, np.ndarray]:
    """dout: (N, M). Returns {'x', 'w', 'b'} and, with a norm, {'gamma', 'beta'} gradients."""
    da = relu_backward(dout, cache.relu)
    grads = {}
    if cache.norm_kind == "batchnorm":
        da, grads["gamma"], grads["beta"] = batchnorm_backward_alt(da, cache.norm)
    elif cache.norm_kind == "layernorm":
        da, grads["gamma"], grads["beta"] = layernorm_backward(da, cache.norm)
    grads["x"], grads["w"], grads["b"] = affine_backward(da, cache.affine)
    return grads


def affine_relu_backward(dout: np.ndarray, cache: AffineNormReluCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout: (N, M). Returns dx, dw, db."""
    grads = affine_norm_relu_backward(dout, cache)
    return grads["x"], grads["w"], grads["b"]


# --- conv - [spatial batchnorm] - relu - [2x2 max pool] -----------------------------------------


class ConvBlockCache(NamedTuple):
    conv: FastConvCache
    norm: NormCache | None
    relu: ActivationCache
    pool: FastPoolCache | None


def conv_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, *, stride: int = 1,
                      pad: int = 0) -> tuple[np.ndarray, ConvBlockCache]:
    """relu(conv(x)) with the fast convolution. x: (N, C, H, W); w: (F, C, HH, WW); b: (F,)."""
    a, conv_cache = conv_forward_fast(x, w, b, stride=stride, pad=pad)
    out, relu_cache = relu_forward(a)
    return out, ConvBlockCache(conv_cache, None, relu_cache, None)


def conv_relu_backward(dout: np.ndarray, cache: ConvBlockCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout: (N, F, H', W'). Returns dx, dw, db."""
    return conv_backward_fast(relu_backward(dout, cache.relu), cache.conv)


# relu is monotone, so max(relu(window)) = relu(max(window)), and the gradients agree as well: the
# blocks below pool first and apply relu to an array pool**2 times smaller.


def conv_relu_pool_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, *, stride: int = 1, pad: int = 0,
                           pool: int = 2) -> tuple[np.ndarray, ConvBlockCache]:
    """maxpool(relu(conv(x))), pooling pool x pool windows with stride ``pool``.
    Returns out (N, F, H' / pool, W' / pool)."""
    a, conv_cache = conv_forward_fast(x, w, b, stride=stride, pad=pad)
    pooled, pool_cache = max_pool_forward_fast(a, pool_height=pool, pool_width=pool, stride=pool)
    out, relu_cache = relu_forward(pooled)
    return out, ConvBlockCache(conv_cache, None, relu_cache, pool_cache)


def conv_relu_pool_backward(dout: np.ndarray, cache: ConvBlockCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout: (N, F, H' / pool, W' / pool). Returns dx, dw, db."""
    da = max_pool_backward_fast(relu_backward(dout, cache.relu), cache.pool)
    return conv_backward_fast(da, cache.conv)


def conv_bn_relu_pool_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                              stats: BatchNormStats | None, *, train: bool, stride: int = 1, pad: int = 0,
                              pool: int = 2) -> tuple[np.ndarray, ConvBlockCache, BatchNormStats]:
    """maxpool(relu(spatial_batchnorm(conv(x)))); gamma, beta, stats: (F,).
    Returns out, cache and the updated running statistics."""
    a, conv_cache = conv_forward_fast(x, w, b, stride=stride, pad=pad)
    a, norm_cache, stats = spatial_batchnorm_forward(a, gamma, beta, stats, train=train)
    pooled, pool_cache = max_pool_forward_fast(a, pool_height=pool, pool_width=pool, stride=pool)
    out, relu_cache = relu_forward(pooled)
    return out, ConvBlockCache(conv_cache, norm_cache, relu_cache, pool_cache), stats


def conv_bn_relu_pool_backward(dout: np.ndarray, cache: ConvBlockCache) -> dict[str, np.ndarray]:
    """Returns the gradients {'x', 'w', 'b', 'gamma', 'beta'}."""
    da = max_pool_backward_fast(relu_backward(dout, cache.relu), cache.pool)
    da, dgamma, dbeta = spatial_batchnorm_backward(da, cache.norm)
    dx, dw, db = conv_backward_fast(da, cache.conv)
    return {"x": dx, "w": dw, "b": db, "gamma": dgamma, "beta": dbeta}
