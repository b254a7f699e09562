"""im2col and col2im through stride tricks: the data movement behind the fast convolution.

im2col lays every receptive field of a padded batch out as one column, so that a convolution
becomes a single matrix product (Chellapilla et al. 2006). Here the columns come from
``np.lib.stride_tricks.as_strided``: a view that walks the padded input with the window's strides,
then one reshape copies it into a (C * HH * WW, N * H' * W') matrix. col2im is the adjoint: it
adds every column back onto the pixels it came from, one kernel offset (di, dj) at a time, so
the loop runs HH * WW times over whole (N, C, H', W') slabs instead of once per pixel.

Rows are ordered (c, di, dj), matching ``w.reshape(F, C * HH * WW)``; columns are ordered
(n, i, j), so the product reshapes to (F, N, H', W').
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def sliding_windows(x: np.ndarray, HH: int, WW: int, stride: int, H_out: int, W_out: int) -> np.ndarray:
    """A read-only view (N, C, H', W', HH, WW) of every window of x (N, C, H, W); copies nothing."""
    sN, sC, sH, sW = x.strides
    N, C = x.shape[:2]
    return as_strided(x, shape=(N, C, H_out, W_out, HH, WW),
                      strides=(sN, sC, sH * stride, sW * stride, sH, sW), writeable=False)


def im2col(x_pad: np.ndarray, HH: int, WW: int, stride: int, H_out: int, W_out: int) -> np.ndarray:
    """Columns of every HH x WW window of x_pad (N, C, Hp, Wp): returns (C * HH * WW, N * H' * W')."""
    sN, sC, sH, sW = x_pad.strides
    N, C = x_pad.shape[:2]
    view = as_strided(x_pad, shape=(C, HH, WW, N, H_out, W_out),
                      strides=(sC, sH, sW, sN, sH * stride, sW * stride), writeable=False)
    return view.reshape(C * HH * WW, N * H_out * W_out)  # the one copy


def col2im(cols: np.ndarray, x_pad_shape: tuple[int, int, int, int], HH: int, WW: int, stride: int,
           H_out: int, W_out: int) -> np.ndarray:
    """Adjoint of im2col: cols (C * HH * WW, N * H' * W') -> (N, C, Hp, Wp), summing the
    contributions of overlapping windows. The result is a transposed view of a (C, N, Hp, Wp) array."""
    N, C, Hp, Wp = x_pad_shape
    blocks = cols.reshape(C, HH, WW, N, H_out, W_out)
    x_pad = np.zeros((C, N, Hp, Wp), cols.dtype)  # channel-major like the columns: the adds stay contiguous
    for di in range(HH):
        for dj in range(WW):
            rows, columns = slice(di, di + stride * H_out, stride), slice(dj, dj + stride * W_out, stride)
            x_pad[:, :, rows, columns] += blocks[:, di, dj]  # (C, N, H', W')
    return x_pad.transpose(1, 0, 2, 3)  # (N, C, Hp, Wp), a view
