"""Shape checks shared by every layer, so a mismatch names the argument and the shape it needs.

Without them a wrong shape surfaces as a NumPy broadcast traceback from deep inside a kernel;
with them it is one line: ``affine_forward: w must have shape (D, M) = (784, M) to match x's
784 features per example, got (100, 10)``.
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import CnnlabError


class ShapeError(CnnlabError, ValueError):
    """An array has the wrong shape (or dtype) for a layer. A ValueError for library callers,
    a CnnlabError so that the CLI prints it as one line."""


def check_ndim(fn: str, name: str, array: np.ndarray, layout: str) -> None:
    """Require ``array.ndim == len(layout.split(','))``; ``layout`` reads like ``'(N, C, H, W)'``."""
    ndim = layout.count(",") + 1
    if np.ndim(array) != ndim:
        raise ShapeError(f"{fn}: {name} must be {ndim}-D {layout}, got shape {np.shape(array)}")


def check_shape(fn: str, name: str, array: np.ndarray, expected: tuple[int, ...], layout: str) -> None:
    """Require ``array.shape == expected``; ``layout`` names the axes, e.g. ``'(D, M)'``."""
    if np.shape(array) != tuple(expected):
        raise ShapeError(f"{fn}: {name} must have shape {layout} = {tuple(expected)}, got {np.shape(array)}")


def check_labels(fn: str, y: np.ndarray, num_examples: int, num_classes: int) -> None:
    """Require integer labels of shape (N,) with values in [0, num_classes)."""
    if np.shape(y) != (num_examples,) or not np.issubdtype(np.asarray(y).dtype, np.integer):
        raise ShapeError(f"{fn}: y must be integer labels of shape (N,) = ({num_examples},), "
                         f"got {np.asarray(y).dtype} {np.shape(y)}")
    if num_examples and (y.min() < 0 or y.max() >= num_classes):
        raise ShapeError(f"{fn}: labels in y must lie in [0, {num_classes}) for {num_classes} score columns, "
                         f"found {y.min()}..{y.max()}")


def windows_along(fn: str, size: int, window: int, stride: int, pad: int | None, names: tuple[str, str]) -> int:
    """The number of windows along one axis, or a ShapeError that gives the tiling formula.

    ``names`` are the symbols for the input and window sizes, ``('H', 'HH')`` or ``('W', 'WW')``;
    ``pad`` None means the layer has no padding (pooling), and the formula leaves it out.
    """
    big, small = names
    padded = f"{big} + 2*pad" if pad is not None else big
    pad = pad or 0
    if stride < 1 or pad < 0 or window < 1:
        raise ShapeError(f"{fn}: need stride >= 1, pad >= 0 and a window of at least 1, "
                         f"got stride={stride}, pad={pad}, {small}={window}")
    span = size + 2 * pad - window
    if span < 0:
        raise ShapeError(f"{fn}: the window {small}={window} is larger than the input {padded} = {size + 2 * pad}")
    if span % stride:
        got = f"{size} + 2*{pad}" if padded != big else f"{size}"
        raise ShapeError(f"{fn}: windows do not tile the input: ({padded} - {small}) % stride must be 0, "
                         f"got ({got} - {window}) % {stride} = {span % stride}")
    return span // stride + 1
