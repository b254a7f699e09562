"""Batch, layer, spatial batch and spatial group normalization.

All four normalize some axis to zero mean and unit variance, then scale by gamma and shift by
beta (Ioffe & Szegedy 2015; Ba et al. 2016; Wu & He 2018). They share one closed-form
backward, ``_normalize_backward``; batchnorm also has the step-by-step backward of the lab,
which walks the computational graph node by node.

Running statistics. Batchnorm is the one layer with state: the running mean and variance used
at test time. Nothing updates it behind your back. ``batchnorm_forward`` takes the current
``BatchNormStats`` and returns the next one as a third value, so a caller writes

    out, cache, stats = batchnorm_forward(x, gamma, beta, stats, train=True)

We follow torch, not cs231n, in the two places they differ: ``momentum`` is the weight of the new
batch (torch's 0.1; cs231n's 0.9 is 1 - momentum), and the running variance is updated with the
unbiased batch variance (divide by N - 1), while the batch itself is normalized with the biased one.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnnlab.scratch.shapes import ShapeError, check_ndim, check_shape

EPS = 1e-5  # torch's default for every normalization layer


class BatchNormStats(NamedTuple):
    """Running statistics of one batchnorm layer, each (D,): what test mode normalizes with."""

    mean: np.ndarray
    var: np.ndarray

    @classmethod
    def initial(cls, num_features: int, dtype=np.float64) -> BatchNormStats:
        """Mean 0 and variance 1, torch's initial running statistics."""
        return cls(np.zeros(num_features, dtype), np.ones(num_features, dtype))


class NormCache(NamedTuple):
    x_hat: np.ndarray  # the normalized input, shaped as the normalized view of x
    x_centered: np.ndarray  # x - mean, same shape (only the step-by-step backward needs it)
    inv_std: np.ndarray  # 1 / sqrt(var + eps), broadcastable against x_hat
    gamma: np.ndarray
    train: bool = True  # False: the statistics were constants, so no gradient flows through them


def _normalize(x: np.ndarray, axis: int | tuple[int, ...], eps: float):
    """Standardize x along ``axis`` with the biased variance. Returns x_hat, x - mean, inv_std, var."""
    mean = x.mean(axis=axis, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axis=axis, keepdims=True)
    inv_std = 1 / np.sqrt(var + eps)
    return centered * inv_std, centered, inv_std, var


def _normalize_backward(dx_hat: np.ndarray, x_hat: np.ndarray, inv_std: np.ndarray,
                        axis: int | tuple[int, ...]) -> np.ndarray:
    """Closed-form gradient of x_hat = (x - mean) / std through the mean and the variance:
    dx = inv_std * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)), means along ``axis``."""
    mean_d = dx_hat.mean(axis=axis, keepdims=True)
    mean_dx = (dx_hat * x_hat).mean(axis=axis, keepdims=True)
    return inv_std * (dx_hat - mean_d - x_hat * mean_dx)


def _check_affine(fn: str, gamma: np.ndarray, beta: np.ndarray, num: int, axis: str) -> None:
    check_shape(fn, "gamma", gamma, (num,), f"({axis},)")
    check_shape(fn, "beta", beta, (num,), f"({axis},)")


# --- batchnorm: normalize each feature over the batch -----------------------------------------


def batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, stats: BatchNormStats | None, *,
                      train: bool, momentum: float = 0.1,
                      eps: float = EPS) -> tuple[np.ndarray, NormCache, BatchNormStats]:
    """Batch normalization, as ``torch.nn.functional.batch_norm``.

    x: (N, D); gamma, beta: (D,); stats: running mean and var (D,) each, None for the initial ones.
    Training normalizes with the batch's statistics and returns updated running ones; test mode
    normalizes with ``stats`` and returns them unchanged. Returns out (N, D), cache, stats.
    """
    check_ndim("batchnorm_forward", "x", x, "(N, D)")
    N, D = x.shape
    _check_affine("batchnorm_forward", gamma, beta, D, "D")
    stats = BatchNormStats.initial(D, x.dtype) if stats is None else stats
    check_shape("batchnorm_forward", "stats.mean", stats.mean, (D,), "(D,)")
    check_shape("batchnorm_forward", "stats.var", stats.var, (D,), "(D,)")
    if not train:
        centered = x - stats.mean
        inv_std = 1 / np.sqrt(stats.var + eps)
        x_hat = centered * inv_std
        return gamma * x_hat + beta, NormCache(x_hat, centered, inv_std, gamma, train=False), stats
    if N < 2:
        raise ShapeError(f"batchnorm_forward: training needs at least 2 examples per batch to estimate "
                         f"a variance, got x of shape {x.shape}")
    x_hat, centered, inv_std, var = _normalize(x, axis=0, eps=eps)
    batch_mean = x.mean(axis=0)
    unbiased_var = var[0] * (N / (N - 1))
    stats = BatchNormStats((1 - momentum) * stats.mean + momentum * batch_mean,
                           (1 - momentum) * stats.var + momentum * unbiased_var)
    return gamma * x_hat + beta, NormCache(x_hat, centered, inv_std, gamma), stats


def batchnorm_backward(dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step-by-step backward: one line per node of the forward graph, last node first.

    dout: (N, D). Returns dx (N, D), dgamma (D,), dbeta (D,).
    """
    x_hat, centered, inv_std, gamma, train = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)  # out = gamma * x_hat + beta
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    if not train:
        return dx_hat * inv_std, dgamma, dbeta
    dinv_std = (dx_hat * centered).sum(axis=0)  # x_hat = centered * inv_std
    dcentered = dx_hat * inv_std
    dstd = -dinv_std * inv_std**2  # inv_std = 1 / std
    dvar = 0.5 * inv_std * dstd  # std = sqrt(var + eps)
    dcentered = dcentered + 2 * centered * dvar / N  # var = mean(centered ** 2)
    dx = dcentered - dcentered.sum(axis=0) / N  # centered = x - mean(x)
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simplified backward: the graph's derivative worked out on paper into one expression,
    dx = gamma * inv_std / N * (N * dout - dbeta - x_hat * dgamma). Same shapes as batchnorm_backward."""
    x_hat, _, inv_std, gamma, train = cache
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    if not train:
        return dout * gamma * inv_std, dgamma, dbeta
    return _normalize_backward(dout * gamma, x_hat, inv_std, axis=0), dgamma, dbeta


# --- layernorm: normalize each example over its features ---------------------------------------


def layernorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                      eps: float = EPS) -> tuple[np.ndarray, NormCache]:
    """Layer normalization over the D features of each example, as ``F.layer_norm(x, (D,), gamma, beta)``.
    No running statistics: train and test compute the same thing. x: (N, D); gamma, beta: (D,)."""
    check_ndim("layernorm_forward", "x", x, "(N, D)")
    _check_affine("layernorm_forward", gamma, beta, x.shape[1], "D")
    x_hat, centered, inv_std, _ = _normalize(x, axis=1, eps=eps)
    return gamma * x_hat + beta, NormCache(x_hat, centered, inv_std, gamma)


def layernorm_backward(dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout: (N, D). Returns dx (N, D), dgamma (D,), dbeta (D,)."""
    dgamma = (dout * cache.x_hat).sum(axis=0)
    dbeta = dout.sum(axis=0)
    return _normalize_backward(dout * cache.gamma, cache.x_hat, cache.inv_std, axis=1), dgamma, dbeta


# --- spatial batchnorm: batchnorm of each channel over (N, H, W) -------------------------------


def spatial_batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, stats: BatchNormStats | None, *,
                              train: bool, momentum: float = 0.1,
                              eps: float = EPS) -> tuple[np.ndarray, NormCache, BatchNormStats]:
    """Batchnorm for images, as ``F.batch_norm`` on 4-D input: each channel is one feature whose
    N * H * W values form the batch. x: (N, C, H, W); gamma, beta, stats: (C,). Returns
    out (N, C, H, W), cache, stats."""
    check_ndim("spatial_batchnorm_forward", "x", x, "(N, C, H, W)")
    N, C, H, W = x.shape
    rows = x.transpose(0, 2, 3, 1).reshape(N * H * W, C)  # (N*H*W, C): channels become features
    out, cache, stats = batchnorm_forward(rows, gamma, beta, stats, train=train, momentum=momentum, eps=eps)
    return out.reshape(N, H, W, C).transpose(0, 3, 1, 2), cache, stats


def spatial_batchnorm_backward(dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout: (N, C, H, W). Returns dx (N, C, H, W), dgamma (C,), dbeta (C,)."""
    N, C, H, W = dout.shape
    drows, dgamma, dbeta = batchnorm_backward_alt(dout.transpose(0, 2, 3, 1).reshape(-1, C), cache)
    return drows.reshape(N, H, W, C).transpose(0, 3, 1, 2), dgamma, dbeta


# --- spatial group norm: normalize each example over groups of channels -------------------------


def spatial_groupnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, num_groups: int,
                              eps: float = EPS) -> tuple[np.ndarray, NormCache]:
    """Group normalization (Wu & He 2018), as ``F.group_norm(x, num_groups, gamma, beta)``: the C
    channels split into ``num_groups`` groups of C // num_groups, and each example's group is
    normalized over its channels and pixels. x: (N, C, H, W); gamma, beta: (C,)."""
    check_ndim("spatial_groupnorm_forward", "x", x, "(N, C, H, W)")
    N, C, H, W = x.shape
    if num_groups < 1 or C % num_groups:
        raise ShapeError(f"spatial_groupnorm_forward: num_groups must divide the C={C} channels, got {num_groups}")
    _check_affine("spatial_groupnorm_forward", gamma, beta, C, "C")
    grouped = x.reshape(N, num_groups, -1)  # (N, G, C/G * H * W)
    x_hat, centered, inv_std, _ = _normalize(grouped, axis=2, eps=eps)
    out = gamma[:, None, None] * x_hat.reshape(x.shape) + beta[:, None, None]
    return out, NormCache(x_hat, centered, inv_std, gamma)


def spatial_groupnorm_backward(dout: np.ndarray, cache: NormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout: (N, C, H, W). Returns dx (N, C, H, W), dgamma (C,), dbeta (C,)."""
    x_hat = cache.x_hat.reshape(dout.shape)
    dgamma = (dout * x_hat).sum(axis=(0, 2, 3))
    dbeta = dout.sum(axis=(0, 2, 3))
    dx_hat = (dout * cache.gamma[:, None, None]).reshape(cache.x_hat.shape)  # (N, G, C/G * H * W)
    dx = _normalize_backward(dx_hat, cache.x_hat, cache.inv_std, axis=2)
    return dx.reshape(dout.shape), dgamma, dbeta
