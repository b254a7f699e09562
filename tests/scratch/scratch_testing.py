"""Helpers for the scratch tests: run the same computation in PyTorch (float64 autograd) and
compare with ``rel_error``, cs231n's elementwise relative error."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from cnnlab.scratch.gradient_check import rel_error

TOL = 1e-8  # the bound for forward and backward against torch, float64


def torch_forward_backward(fn: Callable[..., torch.Tensor], arrays: list[np.ndarray],
                           dout: np.ndarray | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """out = fn(*tensors) and the gradients of sum(out * dout) (of out itself when it is a scalar)
    with respect to each array, all in float64."""
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(None if dout is None else torch.tensor(dout, dtype=torch.float64))
    return out.detach().numpy(), [t.grad.numpy() for t in tensors]


def assert_close(ours, theirs, tol: float = TOL, what: str = "") -> None:
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != {theirs.shape}"
    error = rel_error(ours, theirs)
    assert error <= tol, f"{what}: relative error {error:.2e} > {tol:.0e}"


def assert_all_close(ours: list, theirs: list, tol: float = TOL, names: str = "") -> None:
    labels = names.split() or [str(i) for i in range(len(ours))]
    assert len(ours) == len(theirs)
    for label, a, b in zip(labels, ours, theirs):
        assert_close(a, b, tol, label)
