"""ThreeLayerConvNet: conv - [spatial batchnorm] - relu - 2x2 max pool - affine - relu - [dropout] - affine - softmax.

The convolutional network of ENPM 703 assignment 2, part 3 (cs231n's ``cnn.py``). The conv keeps
the image size (stride 1, pad (filter_size - 1) / 2), the pool halves it. Parameters: W1, b1 (conv),
W2, b2 (hidden affine), W3, b3 (output); with spatial batchnorm, gamma1 and beta1 replace b1
(the batch mean would subtract a bias again).
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.scratch.base import ScratchModel, init_weights, resolve_dtype
from cnnlab.scratch.layer_utils import (
    affine_relu_backward,
    affine_relu_forward,
    conv_bn_relu_pool_backward,
    conv_bn_relu_pool_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from cnnlab.scratch.layers import affine_backward, affine_forward, dropout_backward, dropout_forward, softmax_loss
from cnnlab.scratch.normalization import BatchNormStats


class ThreeLayerConvNet(ScratchModel):
    def __init__(self, input_dim: tuple[int, int, int] = (3, 32, 32), num_filters: int = 32, filter_size: int = 7,
                 hidden_dim: int = 100, num_classes: int = 10, *, normalization: str | None = None,
                 dropout: float = 0.0, reg: float = 0.0, weight_scale: float | str = 1e-3, dtype=np.float32,
                 seed: int | None = None) -> None:
        """input_dim: (C, H, W) with H and W even; num_filters: F; filter_size: odd, so that the
        padding keeps the size; hidden_dim: the hidden affine's width; normalization: None or
        'batchnorm' (spatial, after the conv); dropout: drop probability before the last affine;
        reg, weight_scale, dtype, seed: as for FullyConnectedNet."""
        C, H, W = input_dim
        if filter_size < 1 or filter_size % 2 == 0:
            raise CnnlabError(f"filter_size must be odd so that pad = (filter_size - 1) / 2 keeps the size, "
                              f"got {filter_size}")
        if H % 2 or W % 2:
            raise CnnlabError(f"the 2x2 max pool needs an even height and width, got input_dim {input_dim}")
        if normalization not in (None, "batchnorm"):
            raise CnnlabError(f"ThreeLayerConvNet's normalization is None or 'batchnorm', got {normalization!r}")
        if not 0 <= dropout < 1:
            raise CnnlabError(f"dropout is the probability of dropping a unit and must lie in [0, 1), got {dropout}")
        self.normalization, self.dropout, self.reg = normalization, float(dropout), float(reg)
        self.pad = (filter_size - 1) // 2
        self.dtype = resolve_dtype(dtype)
        self.rng = np.random.default_rng(seed)
        flat = num_filters * (H // 2) * (W // 2)  # the pooled feature map, flattened
        self.params = {
            "W1": init_weights(self.rng, (num_filters, C, filter_size, filter_size), C * filter_size**2,
                               weight_scale, self.dtype),
            "b1": np.zeros(num_filters, self.dtype),
            "W2": init_weights(self.rng, (flat, hidden_dim), flat, weight_scale, self.dtype),
            "b2": np.zeros(hidden_dim, self.dtype),
            "W3": init_weights(self.rng, (hidden_dim, num_classes), hidden_dim, weight_scale, self.dtype),
            "b3": np.zeros(num_classes, self.dtype),
        }
        self.bn_stats: dict[str, BatchNormStats] = {}
        if normalization == "batchnorm":
            del self.params["b1"]
            self.params["gamma1"] = np.ones(num_filters, self.dtype)
            self.params["beta1"] = np.zeros(num_filters, self.dtype)
            self.bn_stats["bn1"] = BatchNormStats.initial(num_filters, self.dtype)

    def _forward(self, X: np.ndarray, train: bool, rng: np.random.Generator | None):
        p = self.params
        X = X.astype(self.dtype, copy=False)  # (N, C, H, W)
        if self.normalization == "batchnorm":
            no_bias = np.zeros(p["W1"].shape[0], self.dtype)
            h1, conv_cache, self.bn_stats["bn1"] = conv_bn_relu_pool_forward(
                X, p["W1"], no_bias, p["gamma1"], p["beta1"], self.bn_stats["bn1"], train=train, pad=self.pad)
        else:
            h1, conv_cache = conv_relu_pool_forward(X, p["W1"], p["b1"], pad=self.pad)  # (N, F, H/2, W/2)
        h2, hidden_cache = affine_relu_forward(h1, p["W2"], p["b2"])  # (N, hidden_dim)
        drop_cache = None
        if self.dropout:
            h2, drop_cache = dropout_forward(h2, 1 - self.dropout, train=train, rng=rng or self.rng)
        scores, out_cache = affine_forward(h2, p["W3"], p["b3"])  # (N, num_classes)
        return scores, (conv_cache, hidden_cache, drop_cache, out_cache)

    def scores(self, X: np.ndarray) -> np.ndarray:
        """X: (N, C, H, W). Returns test-mode scores (N, num_classes)."""
        return self._forward(X, train=False, rng=None)[0]

    def forward_backward(self, X: np.ndarray, y: np.ndarray,
                         rng: np.random.Generator | None = None) -> tuple[float, dict[str, np.ndarray], np.ndarray]:
        scores, (conv_cache, hidden_cache, drop_cache, out_cache) = self._forward(X, train=True, rng=rng)
        loss, dscores = softmax_loss(scores, y)
        grads: dict[str, np.ndarray] = {}
        dh2, grads["W3"], grads["b3"] = affine_backward(dscores, out_cache)
        if drop_cache is not None:
            dh2 = dropout_backward(dh2, drop_cache)
        dh1, grads["W2"], grads["b2"] = affine_relu_backward(dh2, hidden_cache)
        if self.normalization == "batchnorm":
            g = conv_bn_relu_pool_backward(dh1, conv_cache)
            grads.update(W1=g["w"], gamma1=g["gamma"], beta1=g["beta"])
        else:
            _, grads["W1"], grads["b1"] = conv_relu_pool_backward(dh1, conv_cache)
        loss += self.l2_penalty(grads)
        return loss, grads, scores
