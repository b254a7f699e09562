"""FullyConnectedNet: {affine - [batchnorm | layernorm] - relu - [dropout]} x (L - 1) - affine - softmax.

The network of ENPM 703 assignment 2, parts 1, 2 and 4, of any depth. Parameters are W1, b1,
..., WL, bL, with gamma_i, beta_i for each normalized hidden layer i; batchnorm's running
statistics are ``bn_stats['bn<i>']``. A layer followed by batchnorm has no bias b_i: the batch
mean would subtract it again, so its gradient is exactly 0 and beta_i does its job (Ioffe &
Szegedy 2015, section 3.2; cs231n keeps it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.scratch.base import ScratchModel, init_weights, resolve_dtype
from cnnlab.scratch.layer_utils import affine_norm_relu_backward, affine_norm_relu_forward, check_normalization
from cnnlab.scratch.layers import affine_backward, affine_forward, dropout_backward, dropout_forward, softmax_loss
from cnnlab.scratch.normalization import BatchNormStats


class FullyConnectedNet(ScratchModel):
    def __init__(self, hidden_dims: Sequence[int], input_dim: int = 3 * 32 * 32, num_classes: int = 10, *,
                 dropout: float = 0.0, normalization: str | None = None, reg: float = 0.0,
                 weight_scale: float | str = 1e-2, dtype=np.float32, seed: int | None = None) -> None:
        """hidden_dims: the width of each hidden layer; input_dim: D, the features of a flattened
        example; dropout: the probability of dropping a hidden unit (torch's p, 0 for none);
        normalization: None, 'batchnorm' or 'layernorm'; reg: L2 strength; weight_scale: the
        std of the initial weights, or 'he'; dtype: float32 for training, float64 for checks;
        seed: initial weights and dropout masks."""
        check_normalization(normalization)
        if not 0 <= dropout < 1:
            raise CnnlabError(f"dropout is the probability of dropping a unit and must lie in [0, 1), got {dropout}")
        dims = [int(input_dim), *[int(d) for d in hidden_dims], int(num_classes)]
        if min(dims) < 1:
            raise CnnlabError(f"layer widths must be positive, got input {input_dim}, hidden {list(hidden_dims)}, "
                              f"classes {num_classes}")
        self.num_layers = len(dims) - 1
        self.normalization, self.dropout, self.reg = normalization, float(dropout), float(reg)
        self.dtype = resolve_dtype(dtype)
        self.rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}
        self.bn_stats: dict[str, BatchNormStats] = {}
        for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:]), start=1):
            self.params[f"W{i}"] = init_weights(self.rng, (fan_in, fan_out), fan_in, weight_scale, self.dtype)
            if not (normalization == "batchnorm" and i < self.num_layers):
                self.params[f"b{i}"] = np.zeros(fan_out, self.dtype)
            if normalization and i < self.num_layers:
                self.params[f"gamma{i}"] = np.ones(fan_out, self.dtype)
                self.params[f"beta{i}"] = np.zeros(fan_out, self.dtype)
            if normalization == "batchnorm" and i < self.num_layers:
                self.bn_stats[f"bn{i}"] = BatchNormStats.initial(fan_out, self.dtype)

    def _forward(self, X: np.ndarray, train: bool, rng: np.random.Generator | None):
        """Scores (N, num_classes) and the caches, one (layer, dropout) pair per hidden layer plus the last affine's."""
        h = X.astype(self.dtype, copy=False)
        caches = []
        for i in range(1, self.num_layers):
            w = self.params[f"W{i}"]
            b = self.params[f"b{i}"] if f"b{i}" in self.params else np.zeros(w.shape[1], self.dtype)
            h, cache, stats = affine_norm_relu_forward(
                h, w, b, self.params.get(f"gamma{i}"),
                self.params.get(f"beta{i}"), norm=self.normalization, stats=self.bn_stats.get(f"bn{i}"), train=train)
            if self.normalization == "batchnorm":
                self.bn_stats[f"bn{i}"] = stats  # unchanged in test mode
            drop_cache = None
            if self.dropout:
                h, drop_cache = dropout_forward(h, 1 - self.dropout, train=train, rng=rng or self.rng)
            caches.append((cache, drop_cache))
        L = self.num_layers
        scores, last_cache = affine_forward(h, self.params[f"W{L}"], self.params[f"b{L}"])
        return scores, caches, last_cache

    def scores(self, X: np.ndarray) -> np.ndarray:
        """X: (N, D) or (N, C, H, W) with C*H*W = D. Returns test-mode scores (N, num_classes)."""
        return self._forward(X, train=False, rng=None)[0]

    def forward_backward(self, X: np.ndarray, y: np.ndarray,
                         rng: np.random.Generator | None = None) -> tuple[float, dict[str, np.ndarray], np.ndarray]:
        scores, caches, last_cache = self._forward(X, train=True, rng=rng)
        loss, dscores = softmax_loss(scores, y)
        grads: dict[str, np.ndarray] = {}
        L = self.num_layers
        dh, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dscores, last_cache)
        for i in range(L - 1, 0, -1):
            cache, drop_cache = caches[i - 1]
            if drop_cache is not None:
                dh = dropout_backward(dh, drop_cache)
            layer_grads = affine_norm_relu_backward(dh, cache)
            dh = layer_grads.pop("x")
            for name, grad in layer_grads.items():
                key = f"{'W' if name == 'w' else name}{i}"
                if key in self.params:  # not the bias a batchnorm layer does without
                    grads[key] = grad
        loss += self.l2_penalty(grads)
        return loss, grads, scores
