"""Fast convolution and max pooling: same signatures and results as the naive ones in
``conv_layers.py``, with no Python loop over examples or positions.

Convolution: im2col (a strided view and one copy), one matrix product, col2im for dx.
Max pooling: when the windows tile the image (pool_height == pool_width == stride) the image
reshapes into (N, C, H', ph, W', pw) blocks; otherwise im2col copies each window into a row.
Both remember where each maximum was, and the backward hands each output's gradient to the
first maximum of its window, as torch does.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnnlab.scratch.conv_layers import conv_output_size, pad_images, pool_output_size
from cnnlab.scratch.im2col import col2im, im2col, sliding_windows


class FastConvCache(NamedTuple):
    cols: np.ndarray  # (C * HH * WW, N * H' * W'), the im2col matrix of the padded input
    x_pad_shape: tuple[int, int, int, int]
    w: np.ndarray  # (F, C, HH, WW)
    stride: int
    pad: int


def conv_forward_fast(x: np.ndarray, w: np.ndarray, b: np.ndarray, *, stride: int = 1,
                      pad: int = 0) -> tuple[np.ndarray, FastConvCache]:
    """Convolution as one matrix product. x: (N, C, H, W); w: (F, C, HH, WW); b: (F,).
    Returns out (N, F, H', W') with H' = (H + 2 * pad - HH) / stride + 1 (likewise W')."""
    H_out, W_out = conv_output_size("conv_forward_fast", x, w, b, stride, pad)
    N, F, HH, WW = x.shape[0], w.shape[0], w.shape[2], w.shape[3]
    x_pad = pad_images(x, pad)
    cols = im2col(x_pad, HH, WW, stride, H_out, W_out)  # (C*HH*WW, N*H'*W')
    out = w.reshape(F, -1) @ cols  # (F, N*H'*W')
    out += b[:, None]
    # A transposed view, not a copy: the copy would cost more than the product. Elementwise layers
    # keep this memory order, so the backward's dout arrives in it and its transpose is free too.
    return out.reshape(F, N, H_out, W_out).transpose(1, 0, 2, 3), FastConvCache(cols, x_pad.shape, w, stride, pad)


def conv_backward_fast(dout: np.ndarray, cache: FastConvCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout: (N, F, H', W'). Returns dx (N, C, H, W), dw (F, C, HH, WW), db (F,)."""
    cols, x_pad_shape, w, stride, pad = cache
    F, _, HH, WW = w.shape
    H_out, W_out = dout.shape[2:]
    db = dout.sum(axis=(0, 2, 3))
    dout_rows = dout.transpose(1, 0, 2, 3).reshape(F, -1)  # (F, N*H'*W'), columns ordered as in cols
    dw = (dout_rows @ cols.T).reshape(w.shape)
    dcols = w.reshape(F, -1).T @ dout_rows  # (C*HH*WW, N*H'*W')
    dx_pad = col2im(dcols, x_pad_shape, HH, WW, stride, H_out, W_out)  # (N, C, Hp, Wp), a transposed view
    H, W = x_pad_shape[2] - 2 * pad, x_pad_shape[3] - 2 * pad
    return dx_pad[:, :, pad:pad + H, pad:pad + W], dw, db


class FastPoolCache(NamedTuple):
    x_shape: tuple[int, int, int, int]
    x_strides: tuple[int, ...]  # so that dx gets x's memory layout (a conv's output is a transposed view)
    argmax: np.ndarray  # (N, C, H', W') uint8/int: the window offset di * pool_width + dj of each maximum
    pool_height: int
    pool_width: int
    stride: int


def _window_offsets(pool_height: int, pool_width: int):
    """(k, di, dj) for every offset of a window, in row-major order: k = di * pool_width + dj."""
    return [(di * pool_width + dj, di, dj) for di in range(pool_height) for dj in range(pool_width)]


def max_pool_forward_fast(x: np.ndarray, *, pool_height: int = 2, pool_width: int = 2,
                          stride: int = 2) -> tuple[np.ndarray, FastPoolCache]:
    """Max pooling without loops over positions. x: (N, C, H, W).
    Returns out (N, C, H', W') with H' = (H - pool_height) / stride + 1 (likewise W').

    Tiling windows (pool_height == pool_width == stride): x reshapes into blocks
    (N, C, H', ph, W', pw), and a loop over the ph * pw offsets keeps a running maximum and where
    it was, a strict ``>`` so that ties keep the first. (``blocks.max(axis=(3, 5))`` is the obvious
    one-liner, but NumPy reduces over those short strided axes many times slower than this loop.)
    Other windows: im2col, a copy of every window into a row, then argmax along the rows.
    """
    H_out, W_out = pool_output_size("max_pool_forward_fast", x, pool_height, pool_width, stride)
    N, C = x.shape[:2]
    if pool_height == pool_width == stride:
        blocks = x.reshape(N, C, H_out, pool_height, W_out, pool_width)  # a view, even of a transposed x
        out = blocks[:, :, :, 0, :, 0].copy()
        offset_type = np.uint8 if pool_height * pool_width <= 256 else np.int32
        argmax = np.zeros(out.shape, offset_type)
        for k, di, dj in _window_offsets(pool_height, pool_width)[1:]:
            candidate = blocks[:, :, :, di, :, dj]
            # k exceeds every earlier offset, so max(argmax, k * better) sets k exactly where better
            # (arithmetic: np.copyto(..., where=) and np.where are about 10x slower here)
            np.maximum(argmax, (candidate > out) * offset_type(k), out=argmax)
            np.maximum(out, candidate, out=out)
    else:
        rows = sliding_windows(x, pool_height, pool_width, stride, H_out, W_out).reshape(
            N, C, H_out, W_out, pool_height * pool_width)  # im2col: one row per window (a copy)
        argmax = rows.argmax(axis=-1)  # the first maximum
        out = np.take_along_axis(rows, argmax[..., None], axis=-1)[..., 0]
    return out, FastPoolCache(x.shape, x.strides, argmax, pool_height, pool_width, stride)


def max_pool_backward_fast(dout: np.ndarray, cache: FastPoolCache) -> np.ndarray:
    """dout: (N, C, H', W'). Returns dx (N, C, H, W): each output's gradient goes to the first
    maximum of its window, as torch does. The loop walks the window offsets; each step writes a
    strided slice of dx, which for overlapping windows is col2im (the slices overlap and add up)."""
    x_shape, x_strides, argmax, pool_height, pool_width, stride = cache
    H_out, W_out = dout.shape[2:]
    dx = _zeros_like_layout(x_shape, x_strides, np.result_type(dout))
    tiles = pool_height == pool_width == stride
    for k, di, dj in _window_offsets(pool_height, pool_width):
        target = dx[:, :, di:di + stride * H_out:stride, dj:dj + stride * W_out:stride]  # (N, C, H', W')
        if tiles:  # the slices are disjoint: write, no need to add
            np.multiply(dout, argmax == k, out=target)
        else:
            target += dout * (argmax == k)
    return dx


def _zeros_like_layout(shape: tuple[int, ...], strides: tuple[int, ...], dtype) -> np.ndarray:
    """Zeros of ``shape`` whose axes lie in memory in the order of ``strides``."""
    order = sorted(range(len(shape)), key=lambda axis: -strides[axis])  # outermost axis first
    buffer = np.zeros([shape[axis] for axis in order], dtype)
    return buffer.transpose(np.argsort(order))
