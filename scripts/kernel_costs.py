"""Where resnet20's batch-norm time goes, and what the fused kernel (cnnlab.kernels.bn_act) does to
it: the figures docs/BENCHMARKS.md quotes beside ``cnnlab bench train``'s ratios.

    .venv/bin/python scripts/kernel_costs.py ops        eager ops on one activation; BN + ReLU eager vs fused
    .venv/bin/python scripts/kernel_costs.py profile    resnet20's step: batch norm, ReLU and add time, on and off
    .venv/bin/python scripts/kernel_costs.py drift      30 SGD steps: fused vs eager vs eager on a nudged input

The dtype is the one ``auto`` would train in here: bf16 where the CPU computes it natively, else
fp32 (so ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` measures fp32 and the AVX2 build of
the kernel). Tensors are channels-last; glibc keeps freed memory as a training process does.
``ops`` times are medians of 5 rounds; the bandwidths count each pass's bytes read and written.
"""

import contextlib
import copy
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from cnnlab.allocator import keep_freed_memory
from cnnlab.engine.precision import cpu_has_native_bf16
from cnnlab.kernels.bn_act import bn_act
from cnnlab.kernels.build import kernels_off, load_kernel
from cnnlab.models import build_model

ROUNDS = 5
CL = torch.channels_last
STAGES = [(256, 16, 32, 32), (256, 32, 16, 16), (256, 64, 8, 8)]  # resnet20's activations at batch 256
BN_OPS = {"aten::native_batch_norm", "aten::native_batch_norm_backward", "aten::threshold_backward", "aten::relu_",
          "aten::clamp_min_", "aten::add",  # what the kernel replaces (aten::add: the residual adds)
          "cnnlab_kernels::bn_act_forward", "cnnlab_kernels::bn_act_backward"}
CONV_OPS = {"aten::mkldnn_convolution", "aten::convolution_backward"}


def median_ms(fn, repeats: int = 20) -> float:
    for _ in range(3):
        fn()  # warm up kernels and the allocator
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        times.append((time.perf_counter() - start) / repeats * 1e3)
    return statistics.median(times)


def train_dtype() -> torch.dtype:
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def activation(shape, dtype, seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dtype).contiguous(memory_format=CL)


def ops() -> None:
    dtype = train_dtype()
    print(f"{dtype}, {torch.get_num_threads()} threads, C++ kernel: {load_kernel('bn_act').path}; ms, median of {ROUNDS}")
    x = activation(STAGES[0], dtype, 0)
    out, scale = torch.empty_like(x), torch.rand(STAGES[0][1], dtype=dtype).view(1, -1, 1, 1)
    gb = x.numel() * x.element_size() / 1e9
    copy_ms = median_ms(lambda: out.copy_(x))
    print(f"one {tuple(x.shape)} activation: copy_ {copy_ms:.3f} ({2 * gb / copy_ms * 1e3:.0f} GB/s), "
          f"float() {median_ms(lambda: x.float()):.3f}, x * scale {median_ms(lambda: x * scale):.3f}, "
          f"batch norm forward {median_ms(lambda: F.batch_norm(x, None, None, training=True)):.3f}")
    for mb in (32, 256):
        big = torch.empty(mb * 2**20, dtype=torch.uint8)
        big_out = torch.empty_like(big)
        print(f"memory: copy_ of {mb} MB {2 * mb / 1e3 / median_ms(lambda: big_out.copy_(big), 5) * 1e3:.0f} GB/s")
    print("BN + ReLU forward + backward, eager vs fused; the fused passes' bandwidth "
          "(forward reads x twice, writes y; backward reads dy and x twice, writes dx)")
    for shape in STAGES:
        bn, act = torch.nn.BatchNorm2d(shape[1]), torch.nn.ReLU(inplace=True)
        x, dy = activation(shape, dtype, 1).requires_grad_(), activation(shape, dtype, 2)
        gb = x.numel() * x.element_size() / 1e9

        def both(x=x, dy=dy, bn=bn, act=act):  # the input's gradient returned, not accumulated into x.grad
            torch.autograd.grad(bn_act(bn, x, act), (x,), dy)

        with kernels_off():
            eager = median_ms(both)
        fused = median_ms(both)
        kernel, xd = torch.ops.cnnlab_kernels, x.detach()
        w, b, rm, rv = bn.weight.detach(), bn.bias.detach(), bn.running_mean, bn.running_var
        _, mean, rstd, sc, sh = kernel.bn_act_forward(xd, w, b, rm, rv, 0.1, 1e-5, None, True)
        fwd = median_ms(lambda: kernel.bn_act_forward(xd, w, b, rm, rv, 0.1, 1e-5, None, True))
        bwd = median_ms(lambda: kernel.bn_act_backward(dy, xd, None, w, mean, rstd, sc, sh, True))
        print(f"  {str(shape):<18} eager {eager:.2f}  fused {fused:.2f} ({eager / fused:.1f}x)  "
              f"forward {fwd:.2f} ({3 * gb / fwd * 1e3:.0f} GB/s)  backward {bwd:.2f} ({5 * gb / bwd * 1e3:.0f} GB/s)")


def resnet_step(model, dtype):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x = activation((256, 3, 32, 32), torch.float32, 3)
    y = torch.randint(0, 10, (256,), generator=torch.Generator().manual_seed(4))

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


def profile(steps: int = 5) -> None:
    from torch.profiler import profile as torch_profile

    dtype = train_dtype()
    torch.manual_seed(0)
    step = resnet_step(build_model("resnet20").to(memory_format=CL), dtype)
    print(f"resnet20, batch 256, {dtype} channels-last: ms a step (torch.profiler, self CPU time, {steps} steps)")
    for label, off in (("kernels off", True), ("kernels on", False)):
        with kernels_off() if off else contextlib.nullcontext():
            for _ in range(3):
                step()
            with torch_profile() as prof:
                for _ in range(steps):
                    step()
        events = prof.key_averages()
        rows = sorted((e for e in events if e.key in BN_OPS), key=lambda e: -e.self_cpu_time_total)
        ms = {e.key: e.self_cpu_time_total / 1e3 / steps for e in rows}
        total = sum(e.self_cpu_time_total for e in events) / 1e3 / steps
        conv = sum(e.self_cpu_time_total for e in events if e.key in CONV_OPS) / 1e3 / steps
        parts = ", ".join(f"{key} {value:.1f}" for key, value in ms.items())
        print(f"  {label}: step {total:.0f}, convolutions {conv:.0f}, batch norm / ReLU / add {sum(ms.values()):.1f} "
              f"({parts})")


def drift(steps: int = 30) -> None:
    """Three copies of resnet20, SGD on the same random batches: fused, eager, and eager on inputs
    nudged by 1e-3 relative. Prints the largest relative difference of their running statistics
    from the eager copy's after 1, 5 and ``steps`` steps."""

    def worst(a, b):
        return max(((p - q).abs().max() / q.abs().max()).item()
                   for (name, p), q in zip(a.named_buffers(), b.buffers()) if "running" in name)

    for dtype in dict.fromkeys((torch.float32, train_dtype())):
        torch.manual_seed(0)
        base = build_model("resnet20", in_chans=1).to(memory_format=CL)
        models = {"fused": base, "eager": copy.deepcopy(base), "nudged": copy.deepcopy(base)}
        optimizers = {k: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for k, m in models.items()}
        gen = torch.Generator().manual_seed(1)
        print(f"{dtype}: running statistics, largest relative difference from the eager copy")
        for step in range(1, steps + 1):
            x = torch.randn(128, 1, 28, 28, generator=gen).contiguous(memory_format=CL)
            y = torch.randint(0, 10, (128,), generator=gen)
            nudged = x * (1 + 1e-3 * torch.randn(x.shape, generator=gen))
            for k, m in models.items():
                optimizers[k].zero_grad()
                with contextlib.nullcontext() if k == "fused" else kernels_off(), \
                        torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                    loss = F.cross_entropy(m(nudged if k == "nudged" else x), y)
                loss.backward()
                optimizers[k].step()
            if step in (1, 5, steps):
                print(f"  after step {step:>2}: fused {worst(models['fused'], models['eager']):.2g}, "
                      f"eager on nudged inputs {worst(models['nudged'], models['eager']):.2g}")


def main() -> None:
    keep_freed_memory()
    commands = {"ops": ops, "profile": profile, "drift": drift}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]]()


if __name__ == "__main__":
    main()
