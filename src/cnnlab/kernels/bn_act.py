"""Batch norm + (residual add) + ReLU in one training kernel on the CPU: ``bn_act``.

Models call ``bn_act(bn, x, act, residual)`` where they would write ``act(bn(x) + residual)``,
keeping their ``nn.BatchNorm2d`` and ``nn.ReLU`` modules (so state dicts, printing and
``model.eval()`` are unchanged). In training mode on channels-last fp32/bf16 CPU tensors it runs
``bn_act.cpp``: two passes forward and two backward instead of PyTorch's five to seven separate
ones (batch norm, add, ReLU and their backwards). Batch-norm and ReLU time in resnet20's bf16
step fell from about 60 to 28-30 ms a step (2 cores, Zen 4; scripts/kernel_costs.py profile).

Everywhere else the modules run as written: eval mode, NCHW, CUDA, fp16, another activation,
``torch.compile`` and ``torch.jit`` tracing (they fuse on their own), modules with hooks
(Grad-CAM, feature taps, which must see the intermediate tensors), and when the kernel cannot
be built (``cnnlab.kernels.build``).

Numbers: the same mean, variance, running-statistics update (momentum or cumulative, unbiased
running variance) and gradients as ``nn.BatchNorm2d`` followed by ReLU, checked against float64
autograd in tests/kernels/test_bn_act.py; bf16 outputs are rounded once, from fp32.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn.modules import module as module_hooks

from cnnlab.kernels.build import kernels_on, load_kernel

_KERNEL = "bn_act"


class BatchNormAct(torch.autograd.Function):
    """y = relu(batch_norm(x) + residual) with batch statistics; updates the running stats."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps, residual, relu):
        y, mean, rstd, scale, shift = torch.ops.cnnlab_kernels.bn_act_forward(
            x, weight, bias, running_mean, running_var, momentum, eps, residual, relu)
        # With a residual the ReLU mask cannot be recomputed from x alone: keep the output.
        ctx.save_for_backward(x, y if residual is not None else None, weight, mean, rstd, scale, shift)
        ctx.relu = relu
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, y, weight, mean, rstd, scale, shift = ctx.saved_tensors
        dx, dweight, dbias, dresidual = torch.ops.cnnlab_kernels.bn_act_backward(
            dy, x, y, weight, mean, rstd, scale, shift, ctx.relu)
        return dx, dweight, dbias, None, None, None, None, (dresidual if y is not None else None), None


def _hooked(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module._backward_pre_hooks)


def _global_hooks() -> bool:
    return bool(module_hooks._global_forward_hooks or module_hooks._global_forward_pre_hooks
                or module_hooks._global_backward_hooks or module_hooks._global_backward_pre_hooks)


def _fits(x: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.dim() == 4 and x.dtype in (torch.float32, torch.bfloat16)
            and x.is_contiguous(memory_format=torch.channels_last) and x.numel() > x.shape[1])


def fusable(bn: nn.Module, x: torch.Tensor, act: nn.Module | None, residual: torch.Tensor | None) -> bool:
    """Whether ``bn_act`` runs the fused kernel for these modules and tensors."""
    if torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting():
        return False
    if not (kernels_on() and type(bn) is nn.BatchNorm2d and bn.training and bn.affine and bn.track_running_stats):
        return False
    if act is not None and type(act) is not nn.ReLU:
        return False
    if not _fits(x) or bn.weight.dtype != torch.float32:
        return False
    if residual is not None and not (_fits(residual) and residual.dtype == x.dtype and residual.shape == x.shape):
        return False
    if _hooked(bn) or (act is not None and _hooked(act)) or _global_hooks():
        return False
    return load_kernel(_KERNEL).available


def _momentum(bn: nn.BatchNorm2d) -> float:
    """nn.BatchNorm2d's exponential_average_factor, after counting this batch."""
    bn.num_batches_tracked.add_(1)
    return 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum


def bn_act(bn: nn.Module, x: torch.Tensor, act: nn.Module | None = None,
           residual: torch.Tensor | None = None) -> torch.Tensor:
    """``act(bn(x) + residual)`` (each part optional but bn), fused where ``fusable`` says.

    x, residual: (N, C, H, W). Returns (N, C, H, W) in x's dtype and layout.
    """
    if fusable(bn, x, act, residual):
        return BatchNormAct.apply(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, _momentum(bn), bn.eps,
                                  residual, act is not None)
    out = bn(x)
    if residual is not None:
        out = out + residual
    return act(out) if act is not None else out
