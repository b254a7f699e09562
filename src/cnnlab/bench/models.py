"""Training-step throughput of each model on the CPU (``cnnlab bench models [PATTERN]``).

One step = zero_grad, forward, loss, backward, SGD (momentum 0.9) update, on random data at
the model's design input and batch 128. The baseline is fp32 in the default (NCHW) layout;
against it we time bfloat16 autocast with channels_last weights and inputs, and print the
ratio. A CPU with AVX-512 BF16 (AMD Zen 4, Intel Cooper Lake and later) runs bf16 matmuls
natively; elsewhere bf16 is emulated.

The first steps of a model are slow (oneDNN builds its kernels, the allocator grows), so
``warmup`` steps are run before the clock starts. Then fp32 and bf16 take turns timing
``repeats`` windows of at least ``steps`` steps and ``min_seconds`` each, and the best
window of each counts: on a machine shared with other jobs the slower windows measure the
other jobs. A model whose training activations would not fit in ``max_memory_gb`` is run
at a smaller batch (halved until they fit; the Batch column says).
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from cnnlab.allocator import keep_freed_memory

# torch is imported inside the functions: `cnnlab bench models --help` and shell completion read
# this module's defaults, and importing torch costs 2 s on the 2-core CPU.


BATCH = 128  # the batch: images per training step
WARMUP = 2  # resnet110's first step takes ~6x its steady time on this CPU
MIN_STEPS = 2
MIN_SECONDS = 2.0  # per window; long enough to average over a few steps of the small nets
REPEATS = 3  # windows per variant; the best is kept (the machine is shared, so the rest is noise)
MAX_STEPS = 100
MAX_MEMORY_GB = 6.0  # a quarter of this 23 GiB machine, which two other engineers share
# A training step holds each layer's output for backward, then a gradient of the same size,
# plus a few temporaries: about 3x the forward activations.
ACTIVATION_FACTOR = 3


@dataclass(frozen=True)
class BenchSettings:
    """How each model is timed; the defaults are the figures of docs/BENCHMARKS.md."""

    batch: int = BATCH
    warmup: int = WARMUP
    steps: int = MIN_STEPS  # timed steps per window, at least
    min_seconds: float = MIN_SECONDS
    repeats: int = REPEATS
    max_memory_gb: float = MAX_MEMORY_GB
    bf16: bool = True  # also time bf16 autocast + channels_last against fp32


def loss_fn(num_classes: int):
    """Cross-entropy over classes; BCE-with-logits for the one-logit binary models."""
    import torch.nn.functional as F

    if num_classes == 1:
        return lambda out, y: F.binary_cross_entropy_with_logits(out.squeeze(1), y.float())
    return F.cross_entropy


def fitting_batch(activation_bytes: int, param_bytes: int, batch: int, max_bytes: float) -> int:
    """The largest batch <= ``batch``, halving, whose estimated training memory fits ``max_bytes``."""
    # weights, gradients, momentum buffer: 3x the parameters, plus the activations per image.
    while batch > 1 and 3 * param_bytes + ACTIVATION_FACTOR * activation_bytes * batch > max_bytes:
        batch //= 2
    return batch


def training_step(model, x, y, loss, *, bf16: bool):
    """A closure running one SGD step of ``model`` on the fixed batch (x, y)."""
    import torch

    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
            value = loss(out.float(), y)
        value.backward()
        optimizer.step()

    return step


def images_per_second(step, batch: int, *, min_steps: int, min_seconds: float) -> float:
    """Images/s over one window of at least ``min_steps`` steps and ``min_seconds`` seconds."""
    steps, start = 0, time.perf_counter()
    while steps < min_steps or (time.perf_counter() - start < min_seconds and steps < MAX_STEPS):
        step()
        steps += 1
    return batch * steps / (time.perf_counter() - start)


def best_rates(steps: dict, batch: int, settings: BenchSettings) -> dict[str, float]:
    """Best images/s of each variant over ``settings.repeats`` windows, the variants taking turns.

    Taking turns gives both variants the same share of whatever else the machine runs; the
    best window is the one least disturbed by it.
    """
    for step in steps.values():
        for _ in range(settings.warmup):
            step()
    best = dict.fromkeys(steps, 0.0)
    for _ in range(settings.repeats):
        for name, step in steps.items():
            rate = images_per_second(step, batch, min_steps=settings.steps, min_seconds=settings.min_seconds)
            best[name] = max(best[name], rate)
    return best


def bench_model(name: str, settings: BenchSettings) -> dict:
    """fp32 (and bf16+channels_last) images/s of one registered model, with its input and batch."""
    import torch

    from cnnlab.analysis.summary import summarize
    from cnnlab.models import MODELS, build_model


    entry = MODELS.get(name)
    torch.manual_seed(0)
    model = build_model(name)
    summary = summarize(model, entry.default_input)
    batch = fitting_batch(summary.activation_bytes, 4 * summary.params, settings.batch,
                          settings.max_memory_gb * 2**30)
    x = torch.randn(batch, *entry.default_input)
    y = torch.randint(0, max(2, entry.default_classes), (batch,))
    loss = loss_fn(entry.default_classes)
    steps = {"fp32": training_step(model, x, y, loss, bf16=False)}
    if settings.bf16:
        fast = copy.deepcopy(model).to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        steps["bf16_cl"] = training_step(fast, x_cl, y, loss, bf16=True)
    result = {"model": name, "input": "x".join(map(str, entry.default_input)), "batch": batch,
              **best_rates(steps, batch, settings)}
    if settings.bf16:
        result["ratio"] = result["bf16_cl"] / result["fp32"]
    return result


def environment() -> str:
    import torch

    from cnnlab.run.environment import cpu_name

    from cnnlab.engine.precision import cpu_has_native_bf16

    return (f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_name()}, "
            f"ISA {torch.backends.cpu.get_cpu_capability()}, native bf16: {'yes' if cpu_has_native_bf16() else 'no'}, "
            f"malloc keeps freed memory: {'yes' if keep_freed_memory() else 'no'}, C++ kernels: {kernel_status()}")


def kernel_status() -> str:
    """'built' or why not ('CNNLAB_KERNELS=0', the compiler's complaint)."""
    from cnnlab.kernels.build import load_kernel

    kernel = load_kernel("bn_act")
    return "built" if kernel.available else f"not built ({kernel.reason})"


def bench_models(names: list[str], settings: BenchSettings, *, threads: int | None = None,
                 on_model: Callable[[str], None] | None = None) -> dict:
    """Time each model of ``names``; ``on_model(name)`` is called before each (for progress).

    Returns {"environment": ..., "load": ..., "results": [bench_model(...) per name]}.
    ``threads`` sets torch's CPU threads for the rest of the process.
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    keep_freed_memory()  # as training does (cnnlab.engine.session.setup)
    load_before = os.getloadavg()[1]
    results = []
    for name in names:
        if on_model is not None:
            on_model(name)
        results.append(bench_model(name, settings))
    # This bench keeps the threads busy (load ~ threads); a 5-minute load well above that means other jobs ran.
    load = f"5-min load average {load_before:.1f} before, {os.getloadavg()[1]:.1f} after"
    return {"environment": environment(), "load": load, "results": results}
