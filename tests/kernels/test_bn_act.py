"""The fused batch norm + residual + ReLU kernel against float64 autograd and nn.BatchNorm2d."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.cache import cache_dir
from cnnlab.kernels import bn_act as bn_act_mod
from cnnlab.kernels.bn_act import bn_act, fusable
from cnnlab.kernels.build import Kernel, _build, compile_command, kernels_off, load_kernel
from cnnlab.models import build_model

CL = torch.channels_last
FUSED = "BatchNormActBackward"


def cl(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=CL)


def modules(C: int, seed: int = 0) -> tuple[nn.BatchNorm2d, nn.ReLU]:
    torch.manual_seed(seed)
    bn = nn.BatchNorm2d(C)
    with torch.no_grad():  # not the 1/0 defaults, so a swapped or missing term shows
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_()
    return bn, nn.ReLU(inplace=True)


def reference(x, weight, bias, residual, relu, dy):
    """float64 autograd: y and the gradients of x, weight, bias, residual."""
    x64 = x.double().requires_grad_()
    w64, b64 = weight.detach().double().requires_grad_(), bias.detach().double().requires_grad_()
    r64 = residual.double().requires_grad_() if residual is not None else None
    y = F.batch_norm(x64, None, None, w64, b64, training=True, eps=1e-5)
    y = y + r64 if r64 is not None else y
    y = torch.relu(y) if relu else y
    y.backward(dy.double())
    return y.detach(), x64.grad, w64.grad, b64.grad, (r64.grad if r64 is not None else None)


# (N, C, H, W): a row count that is not a whole number of tiles (5 * 3 * 7 = 105 rows of 16), one
# over a block of 256 rows, an odd channel count (tiles of one row), and resnet20's widest stage.
SHAPES = [(5, 16, 3, 7), (4, 16, 16, 16), (6, 3, 5, 5), (8, 64, 4, 4)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("residual,relu", [(False, True), (True, True), (True, False), (False, False)])
def test_matches_float64_autograd(dtype, shape, residual, relu):
    bn, act = modules(shape[1])
    gen = torch.Generator().manual_seed(1)
    x = cl((torch.randn(shape, generator=gen) * 2 + 0.5).to(dtype))
    res = cl(torch.randn(shape, generator=gen).to(dtype)) if residual else None
    dy = cl(torch.randn(shape, generator=gen).to(dtype))
    xg = x.clone().requires_grad_()
    rg = res.clone().requires_grad_() if residual else None
    y = bn_act(bn, xg, act if relu else None, residual=rg)
    assert type(y.grad_fn).__name__ == FUSED
    assert y.dtype == dtype and y.is_contiguous(memory_format=CL)
    y.backward(dy)
    ref_y, ref_dx, ref_dw, ref_db, ref_dr = reference(x, bn.weight, bn.bias, res, relu, dy)
    # fp32: float rounding only. bf16: inputs are exact in fp32, the math is fp32 and the result
    # is rounded once to bf16 (relative 2^-9), so twice that rounding bounds it.
    rtol = 1e-5 if dtype == torch.float32 else 2**-8

    def close(actual, expected, rtol=rtol):
        torch.testing.assert_close(actual.double(), expected, rtol=rtol, atol=rtol * expected.abs().max().item())

    close(y, ref_y)
    close(xg.grad, ref_dx)
    close(bn.weight.grad, ref_dw, rtol=1e-5)  # fp32 sums of exact products
    close(bn.bias.grad, ref_db, rtol=1e-5)
    if residual:
        close(rg.grad, ref_dr)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_running_statistics_follow_batchnorm(momentum):
    fused, _ = modules(16)
    eager = copy.deepcopy(fused)
    fused.momentum = eager.momentum = momentum
    gen = torch.Generator().manual_seed(2)
    for _ in range(3):
        x = cl(torch.randn(4, 16, 6, 6, generator=gen) * 3 + 1)
        bn_act(fused, x)
        eager(x)
    torch.testing.assert_close(fused.running_mean, eager.running_mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(fused.running_var, eager.running_var, rtol=1e-6, atol=1e-6)  # unbiased
    assert int(fused.num_batches_tracked) == int(eager.num_batches_tracked) == 3


def test_same_result_on_one_and_two_threads():
    bn, act = modules(16)
    x = cl(torch.randn(8, 16, 16, 16))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = bn_act(copy.deepcopy(bn), x, act)
        torch.set_num_threads(2)
        two = bn_act(copy.deepcopy(bn), x, act)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)  # block sums added in a fixed order


def test_resnet20_step_as_accurate_as_pytorch_ops():
    """One fp32 step of resnet20 with the kernel and without, each against the float64 model.

    Both differ from float64 by 1e-3 to 1e-2 in the gradients: a ReLU input within float error of
    zero flips its mask, and the flip travels down the net. So the kernel is held to PyTorch's
    own error, not to PyTorch's answer.
    """
    torch.manual_seed(0)
    fused = build_model("resnet20").to(memory_format=CL)
    eager, exact = copy.deepcopy(fused), copy.deepcopy(fused).double()
    x, y = cl(torch.randn(16, 3, 32, 32)), torch.randint(0, 10, (16,))
    loss = F.cross_entropy(fused(x), y)
    loss.backward()
    with kernels_off():
        eager_loss = F.cross_entropy(eager(x), y)
        eager_loss.backward()
    exact_loss = F.cross_entropy(exact(x.double()), y)
    exact_loss.backward()
    torch.testing.assert_close(loss.double(), exact_loss, rtol=1e-5, atol=0)

    def grads(model):
        return torch.cat([p.grad.double().flatten() for p in model.parameters()])

    error, eager_error = ((grads(m) - grads(exact)).norm() / grads(exact).norm() for m in (fused, eager))
    assert error <= 1.5 * eager_error, (error, eager_error)
    for b, e in zip(fused.buffers(), exact.buffers()):  # running statistics
        torch.testing.assert_close(b.double(), e.double(), rtol=1e-4, atol=1e-5)


def _fallback_cases():
    bn, act = modules(8)
    x = cl(torch.randn(4, 8, 5, 5))
    eval_bn = copy.deepcopy(bn).eval()
    hooked = copy.deepcopy(bn)
    hooked.register_forward_hook(lambda m, i, o: None)
    return {
        "NCHW input": (bn, x.contiguous(), act),
        "eval mode": (eval_bn, x, act),
        "another activation": (bn, x, nn.GELU()),
        "float64": (copy.deepcopy(bn).double(), x.double(), act),
        "forward hook (Grad-CAM)": (hooked, x, act),
        "one value per channel": (bn, cl(torch.randn(1, 8, 1, 1)), act),
    }


@pytest.mark.parametrize("case", list(_fallback_cases()))
def test_falls_back_to_pytorch_ops(case):
    bn, x, act = _fallback_cases()[case]
    assert not fusable(bn, x, act, None)
    if x.numel() > x.shape[1]:
        expected = act(copy.deepcopy(bn)(x.clone()))
        torch.testing.assert_close(bn_act(bn, x.clone(), act), expected)


def test_off_switches(monkeypatch):
    bn, act = modules(8)
    x = cl(torch.randn(4, 8, 5, 5))
    assert fusable(bn, x, act, None)
    with kernels_off():
        assert not fusable(bn, x, act, None)
    monkeypatch.setenv("CNNLAB_KERNELS", "0")
    assert not fusable(bn, x, act, None)
    monkeypatch.delenv("CNNLAB_KERNELS")
    monkeypatch.setattr(bn_act_mod, "load_kernel", lambda name: Kernel(name, None, "no compiler"))
    assert not fusable(bn, x, act, None)
    assert type(bn_act(bn, x.clone().requires_grad_(), act).grad_fn).__name__ != FUSED


def test_compile_flags_follow_torch_cpu_capability(monkeypatch, tmp_path):
    source, out = tmp_path / "k.cpp", tmp_path / "k.so"
    for capability, march in [("AVX512", "-march=x86-64-v4"), ("AVX2", "-march=x86-64-v3"), ("DEFAULT", None)]:
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=capability: c)
        command = compile_command(source, out)
        marches = [f for f in command if f.startswith("-march=")]
        assert marches == ([march] if march else [])


def test_compiler_failure_is_a_reason_not_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("CXX", "false")
    assert _build("bn_act", tmp_path / "bn_act.so").startswith("the C++ compiler failed")
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    assert _build("bn_act", tmp_path / "bn_act.so").startswith("cannot run the C++ compiler")
    assert not list(tmp_path.glob("*.so"))  # no half-written library left behind


def test_built_once_and_loaded():
    kernel = load_kernel("bn_act")
    assert kernel.available, kernel.reason
    assert kernel.path.exists() and kernel.path.parent == cache_dir() / "kernels" and kernel.path.suffix == ".so"
    assert load_kernel("bn_act") is kernel


def test_avx2_build_under_the_simulation():
    """ATEN_CPU_CAPABILITY=avx2 builds an AVX2 library of its own, which gives the same numbers."""
    script = (
        "import torch; from cnnlab.kernels.build import load_kernel; from cnnlab.kernels.bn_act import bn_act;"
        "k = load_kernel('bn_act'); assert k.available, k.reason; print(k.path.name);"
        "torch.manual_seed(0); bn = torch.nn.BatchNorm2d(16);"
        "x = torch.randn(4, 16, 8, 8).contiguous(memory_format=torch.channels_last);"
        "y = bn_act(bn, x, torch.nn.ReLU()); assert type(y.grad_fn).__name__ == 'BatchNormActBackward';"
        "torch.testing.assert_close(y, torch.relu(torch.nn.BatchNorm2d(16)(x)), rtol=1e-5, atol=1e-5); print('ok')"
    )
    env = dict(os.environ, ATEN_CPU_CAPABILITY="avx2")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    name, ok = done.stdout.split()
    assert ok == "ok" and name != load_kernel("bn_act").path.name  # its own build


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_nan_propagates_as_in_pytorch(dtype):
    """A NaN poisons its channel's statistics in both, and ReLU keeps NaN (training can see it)."""
    bn, act = modules(4)
    x = torch.randn(2, 4, 3, 3)
    x[1, 2, 0, 0] = float("nan")
    x, dy = cl(x.to(dtype)), cl(torch.randn(2, 4, 3, 3).to(dtype))
    fused_x, eager_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    fused = bn_act(copy.deepcopy(bn), fused_x, act)
    eager = torch.relu(copy.deepcopy(bn)(eager_x))
    assert torch.equal(fused.isnan(), eager.isnan()) and fused.isnan().any()
    fused.backward(dy)
    eager.backward(dy)
    assert torch.equal(fused_x.grad.isnan(), eager_x.grad.isnan())
