"""Convolution and max pooling, naive: explicit loops over examples, filters (or channels) and
output positions, written to be read. ``fast_layers.py`` computes the same with im2col and one
matrix product; ``cnnlab scratch bench`` times one against the other.

Convolution is cross-correlation, as in torch's ``conv2d``: out[n, f, i, j] = b[f] +
sum over (c, di, dj) of w[f, c, di, dj] * x_pad[n, c, i * stride + di, j * stride + dj].
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnnlab.scratch.shapes import ShapeError, check_ndim, check_shape, windows_along


def conv_output_size(fn: str, x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> tuple[int, int]:
    """Check a convolution's arguments and return the output's (H', W'),
    H' = (H + 2 * pad - HH) / stride + 1, or a ShapeError naming what does not fit."""
    check_ndim(fn, "x", x, "(N, C, H, W)")
    check_ndim(fn, "w", w, "(F, C, HH, WW)")
    F, C, HH, WW = w.shape
    if x.shape[1] != C:
        raise ShapeError(f"{fn}: w must have shape (F, C, HH, WW) with C = {x.shape[1]} channels of x "
                         f"(x shape {x.shape}), got {w.shape}")
    check_shape(fn, "b", b, (F,), "(F,)")
    H_out = windows_along(fn, x.shape[2], HH, stride, pad, ("H", "HH"))
    W_out = windows_along(fn, x.shape[3], WW, stride, pad, ("W", "WW"))
    return H_out, W_out


def pool_output_size(fn: str, x: np.ndarray, pool_height: int, pool_width: int, stride: int) -> tuple[int, int]:
    """Check a max pooling's arguments; return (H', W') with H' = (H - pool_height) / stride + 1."""
    check_ndim(fn, "x", x, "(N, C, H, W)")
    H_out = windows_along(fn, x.shape[2], pool_height, stride, None, ("H", "pool_height"))
    W_out = windows_along(fn, x.shape[3], pool_width, stride, None, ("W", "pool_width"))
    return H_out, W_out


def pad_images(x: np.ndarray, pad: int) -> np.ndarray:
    """Zero-pad the two spatial axes of (N, C, H, W) by ``pad`` on each side."""
    if pad == 0:
        return x
    N, C, H, W = x.shape
    x_pad = np.zeros((N, C, H + 2 * pad, W + 2 * pad), x.dtype)
    x_pad[:, :, pad:pad + H, pad:pad + W] = x
    return x_pad


# --- convolution -------------------------------------------------------------------------------


class ConvCache(NamedTuple):
    x_pad: np.ndarray  # (N, C, H + 2 * pad, W + 2 * pad)
    w: np.ndarray  # (F, C, HH, WW)
    stride: int
    pad: int


def conv_forward_naive(x: np.ndarray, w: np.ndarray, b: np.ndarray, *, stride: int = 1,
                       pad: int = 0) -> tuple[np.ndarray, ConvCache]:
    """Convolution with four loops. x: (N, C, H, W); w: (F, C, HH, WW); b: (F,).
    Returns out (N, F, H', W') with H' = (H + 2 * pad - HH) / stride + 1 (likewise W')."""
    H_out, W_out = conv_output_size("conv_forward_naive", x, w, b, stride, pad)
    N = x.shape[0]
    F, _, HH, WW = w.shape
    x_pad = pad_images(x, pad)
    out = np.empty((N, F, H_out, W_out), np.result_type(x, w))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    window = x_pad[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]  # (C, HH, WW)
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out, ConvCache(x_pad, w, stride, pad)


def conv_backward_naive(dout: np.ndarray, cache: ConvCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout: (N, F, H', W'). Returns dx (N, C, H, W), dw (F, C, HH, WW), db (F,)."""
    x_pad, w, stride, pad = cache
    N, F, H_out, W_out = dout.shape
    HH, WW = w.shape[2:]
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    rows, cols = slice(i * stride, i * stride + HH), slice(j * stride, j * stride + WW)
                    dx_pad[n, :, rows, cols] += w[f] * dout[n, f, i, j]
                    dw[f] += x_pad[n, :, rows, cols] * dout[n, f, i, j]
    db = dout.sum(axis=(0, 2, 3))
    H, W = x_pad.shape[2] - 2 * pad, x_pad.shape[3] - 2 * pad
    return dx_pad[:, :, pad:pad + H, pad:pad + W], dw, db


# --- max pooling -------------------------------------------------------------------------------


class PoolCache(NamedTuple):
    x: np.ndarray  # (N, C, H, W)
    pool_height: int
    pool_width: int
    stride: int


def max_pool_forward_naive(x: np.ndarray, *, pool_height: int = 2, pool_width: int = 2,
                           stride: int = 2) -> tuple[np.ndarray, PoolCache]:
    """Max over each pool_height x pool_width window, one window at a time.
    x: (N, C, H, W). Returns out (N, C, H', W') with H' = (H - pool_height) / stride + 1."""
    H_out, W_out = pool_output_size("max_pool_forward_naive", x, pool_height, pool_width, stride)
    N, C = x.shape[:2]
    out = np.empty((N, C, H_out, W_out), x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    window = x[n, c, i * stride:i * stride + pool_height, j * stride:j * stride + pool_width]
                    out[n, c, i, j] = window.max()
    return out, PoolCache(x, pool_height, pool_width, stride)


def max_pool_backward_naive(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Route each output's gradient to its window's maximum; on a tie, to the first maximum in
    row-major order, as torch does. dout: (N, C, H', W'). Returns dx (N, C, H, W)."""
    x, pool_height, pool_width, stride = cache
    N, C, H_out, W_out = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    window = x[n, c, i * stride:i * stride + pool_height, j * stride:j * stride + pool_width]
                    di, dj = divmod(int(np.argmax(window)), pool_width)  # argmax returns the first maximum
                    dx[n, c, i * stride + di, j * stride + dj] += dout[n, c, i, j]
    return dx
