"""Dense layers, activations, losses and dropout, each forward beside its backward.

The contract is cs231n assignment 2's: ``x_forward(...) -> (out, cache)`` and
``x_backward(dout, cache) -> grads``, where ``dout`` has the shape of ``out`` and each gradient
has the shape of its input. Caches are NamedTuples, so a backward reads ``cache.x``, not
``cache[0]``. Loss layers return ``(loss, dscores)`` directly: they end the graph.

Normalization layers live in ``normalization.py``, the naive convolution and pooling in
``conv_layers.py``, their fast versions in ``fast_layers.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnnlab.scratch.shapes import ShapeError, check_labels, check_ndim, check_shape

# --- affine: out = x W + b ----------------------------------------------------------------------


class AffineCache(NamedTuple):
    x: np.ndarray  # (N, d_1, ..., d_k), as given
    w: np.ndarray  # (D, M)


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, AffineCache]:
    """Fully connected layer. Each example is flattened to D = d_1 * ... * d_k features.

    x: (N, d_1, ..., d_k); w: (D, M); b: (M,). Returns out (N, M).
    """
    if np.ndim(x) < 2:
        raise ShapeError(f"affine_forward: x must be (N, d_1, ..., d_k) with at least 2 axes, got shape {np.shape(x)}")
    features = int(np.prod(x.shape[1:]))
    check_ndim("affine_forward", "w", w, "(D, M)")
    if w.shape[0] != features:
        raise ShapeError(f"affine_forward: w must have shape (D, M) = ({features}, M) to match x's {features} "
                         f"features per example (x shape {x.shape}), got {w.shape}")
    check_shape("affine_forward", "b", b, (w.shape[1],), "(M,)")
    out = x.reshape(x.shape[0], features) @ w + b  # (N, M)
    return out, AffineCache(x, w)


def affine_backward(dout: np.ndarray, cache: AffineCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout: (N, M). Returns dx (N, d_1, ..., d_k), dw (D, M), db (M,)."""
    x, w = cache
    check_shape("affine_backward", "dout", dout, (x.shape[0], w.shape[1]), "(N, M)")
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout  # (D, N) @ (N, M)
    db = dout.sum(axis=0)
    return dx, dw, db


# --- elementwise activations: cache the input (or output) the derivative needs -------------------


class ActivationCache(NamedTuple):
    x: np.ndarray  # the input
    negative_slope: float = 0.0  # leaky_relu only


class SigmoidCache(NamedTuple):
    out: np.ndarray  # the output s: the derivative s (1 - s) needs nothing else


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, ActivationCache]:
    """max(0, x), any shape."""
    return np.maximum(x, 0), ActivationCache(x)


def relu_backward(dout: np.ndarray, cache: ActivationCache) -> np.ndarray:
    """The gradient passes where x > 0 (torch takes the derivative at 0 to be 0, and so do we)."""
    return dout * (cache.x > 0)


def leaky_relu_forward(x: np.ndarray, negative_slope: float = 0.01) -> tuple[np.ndarray, ActivationCache]:
    """x where x > 0, negative_slope * x elsewhere (torch's default slope 0.01), any shape."""
    return np.where(x > 0, x, x * negative_slope), ActivationCache(x, negative_slope)


def leaky_relu_backward(dout: np.ndarray, cache: ActivationCache) -> np.ndarray:
    return np.where(cache.x > 0, dout, dout * cache.negative_slope)


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, SigmoidCache]:
    """1 / (1 + exp(-x)), any shape; never exponentiates a large positive number."""
    out = np.empty_like(x)
    positive = x >= 0
    out[positive] = 1 / (1 + np.exp(-x[positive]))
    e = np.exp(x[~positive])  # x < 0, so e < 1: exp(x) / (1 + exp(x)) keeps full relative precision
    out[~positive] = e / (1 + e)
    return out, SigmoidCache(out)


def sigmoid_backward(dout: np.ndarray, cache: SigmoidCache) -> np.ndarray:
    """d sigmoid / dx = s (1 - s), from the cached output s."""
    s = cache.out
    return dout * s * (1 - s)


# --- losses: (scores, labels) -> (loss, dscores), averaged over the batch ----------------------


def _check_scores(fn: str, scores: np.ndarray, y: np.ndarray) -> None:
    check_ndim(fn, "scores", scores, "(N, C)")
    check_labels(fn, y, scores.shape[0], scores.shape[1])


def softmax_loss(scores: np.ndarray, y: np.ndarray) -> tuple[np.floating, np.ndarray]:
    """Mean cross-entropy of softmax(scores) against labels, as ``torch.nn.functional.cross_entropy``.

    scores: (N, C); y: (N,) ints in [0, C). Returns (loss, a scalar of the scores' dtype, and
    dscores (N, C)).
    """
    _check_scores("softmax_loss", scores, y)
    N = scores.shape[0]
    shifted = scores - scores.max(axis=1, keepdims=True)  # exp never overflows
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, C)
    rows = np.arange(N)
    loss = -log_probs[rows, y].mean()
    dscores = np.exp(log_probs)
    dscores[rows, y] -= 1
    return loss, dscores / N


def svm_loss(scores: np.ndarray, y: np.ndarray, margin: float = 1.0) -> tuple[np.floating, np.ndarray]:
    """Multiclass hinge loss of cs231n: mean over examples of sum_{j != y} max(0, s_j - s_y + margin).

    ``torch.nn.functional.multi_margin_loss`` also divides each example's sum by C, so this equals
    C times torch's. scores: (N, C); y: (N,). Returns (loss, dscores (N, C)).
    """
    _check_scores("svm_loss", scores, y)
    N = scores.shape[0]
    rows = np.arange(N)
    margins = np.maximum(0, scores - scores[rows, y][:, None] + margin)  # (N, C)
    margins[rows, y] = 0
    loss = margins.sum() / N
    dscores = (margins > 0).astype(scores.dtype)
    dscores[rows, y] = -dscores.sum(axis=1)  # s_y appears, negated, in every active margin
    return loss, dscores / N


# --- dropout: out = x * mask, so the backward multiplies by the very same mask ------------------


class DropoutCache(NamedTuple):
    mask: np.ndarray | float  # what x was multiplied by: an array in training, a number at test


def _check_keep_prob(fn: str, keep_prob: float) -> None:
    if not 0 < keep_prob <= 1:
        raise ShapeError(f"{fn}: keep_prob is the probability of keeping a unit and must lie in (0, 1], "
                         f"got {keep_prob}")


def dropout_forward(x: np.ndarray, keep_prob: float, *, train: bool,
                    rng: np.random.Generator) -> tuple[np.ndarray, DropoutCache]:
    """Inverted dropout (Srivastava et al. 2014, as in cs231n and torch): in training keep each
    unit with probability ``keep_prob`` and scale the kept ones by 1 / keep_prob, so the expected
    output equals x and the test-time forward is the identity. Any shape.

    ``torch.nn.Dropout(p)`` takes the drop probability: keep_prob = 1 - p.
    """
    _check_keep_prob("dropout_forward", keep_prob)
    if not train:
        return x, DropoutCache(1.0)
    mask = (rng.random(x.shape) < keep_prob).astype(x.dtype) / x.dtype.type(keep_prob)
    return x * mask, DropoutCache(mask)


def vanilla_dropout_forward(x: np.ndarray, keep_prob: float, *, train: bool,
                            rng: np.random.Generator) -> tuple[np.ndarray, DropoutCache]:
    """The original dropout the lab report compares against: zero units with probability
    1 - keep_prob in training without rescaling, and scale everything by keep_prob at test, so
    the test output equals the training output's expectation. Any shape."""
    _check_keep_prob("vanilla_dropout_forward", keep_prob)
    if not train:
        return x * x.dtype.type(keep_prob), DropoutCache(keep_prob)
    mask = (rng.random(x.shape) < keep_prob).astype(x.dtype)
    return x * mask, DropoutCache(mask)


def dropout_backward(dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
    """The backward of both dropouts: out = x * mask, so dx = dout * mask."""
    return dout * cache.mask


vanilla_dropout_backward = dropout_backward
