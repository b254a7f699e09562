"""Training speed as a share of the machine: images/s, FLOPs per image and model FLOP utilization.

``cnnlab bench train [PATTERN...]`` times the training step of each model at batch 256 in the
setting that ``auto`` picks on this machine (``cnnlab.engine.autotune``: measured, or from its
cache), counts the step's FLOPs and divides the achieved FLOP/s by this machine's matrix-multiply
peak for the same dtype, measured in the same process:

- **FLOPs** are counted by ``torch.utils.flop_counter.FlopCounterMode`` over one real
  training step, forward and backward (2 per multiply-add of every conv and matmul; the first
  layer computes no input gradient, so a step counts a little under 3x the forward).
- **Peak** is the best of ``PEAK_REPEATS`` windows of ``torch.mm`` on ``PEAK_N`` x ``PEAK_N``
  matrices in fp32, or in bf16 when the step runs bf16 autocast: the rate the same threads
  reach on the operation that convolutions become.
- **MFU** (model FLOP utilization, PaLM's term) = images/s x FLOPs per image / peak.
- **Kernels**: the same step is also timed with cnnlab's C++ kernels off (``kernels_off``:
  PyTorch's own batch norm, add and ReLU), in turns with the real one; the ratio is what the
  fused kernels (``cnnlab.kernels``) give this model here. Models that do not call them show
  about 1.00x.

The step time is the best of ``REPEATS`` windows of at least ``MIN_SECONDS`` each after a
warm-up, timed by ``cnnlab bench models``' own ``best_rates``; the machine is shared, so the
slower windows measure the other jobs.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable

from cnnlab.allocator import keep_freed_memory

BATCH = 256  # issue 8's batch for the utilization figures
DEFAULT_MODELS = ("convnet", "resnet20", "vgg_mini")
WARMUP = 3
MIN_SECONDS = 2.0
REPEATS = 3
PEAK_N = 2048  # 17 GFLOP a product: large enough that the kernel, not the call, sets the rate
PEAK_SECONDS = 1.0
PEAK_REPEATS = 3


def matmul_peak(dtype_name: str, *, n: int = PEAK_N, seconds: float = PEAK_SECONDS,
                repeats: int = PEAK_REPEATS) -> float:
    """Best FLOP/s of ``torch.mm`` on n x n matrices of ``dtype_name`` (fp32 or bf16) on the CPU."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen).to(dtype) for _ in range(2))
    out = torch.empty(n, n, dtype=dtype)
    for _ in range(2):
        torch.mm(a, b, out=out)
    best = 0.0
    for _ in range(repeats):
        count, start = 0, time.perf_counter()
        while count < 2 or time.perf_counter() - start < seconds:
            torch.mm(a, b, out=out)
            count += 1
        best = max(best, 2 * n**3 * count / (time.perf_counter() - start))
    return best


def step_flops(step: Callable[[], None]) -> int:
    """FLOPs of one call of ``step`` (forward and backward), counted by PyTorch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def bench_train_model(name: str, *, batch: int = BATCH, peaks: dict[str, float], repeats: int = REPEATS,
                      min_seconds: float = MIN_SECONDS) -> dict:
    """One model at its design input: the ``auto`` setting, images/s, FLOPs per image and MFU.

    ``peaks`` holds the matmul peak of each dtype measured so far (filled as needed).
    """
    import torch

    from cnnlab.bench.models import BenchSettings, best_rates, loss_fn
    from cnnlab.engine.autotune import TuneCache, choose, training_step, workload_key
    from cnnlab.engine.precision import candidate_settings
    from cnnlab.kernels.build import kernels_off
    from cnnlab.models import MODELS, build_model

    entry = MODELS.get(name)
    torch.manual_seed(0)
    model = build_model(name)
    x = torch.randn(batch, *entry.default_input)  # (B, C, H, W)
    y = torch.randint(0, max(2, entry.default_classes), (batch,))
    loss = loss_fn(entry.default_classes)
    make_optimizer = functools.partial(torch.optim.SGD, lr=0.01, momentum=0.9, nesterov=True)
    build = functools.partial(training_step, model, loss_fn=loss, make_optimizer=make_optimizer, images=x, labels=y)
    candidates = candidate_settings("cpu", "auto", "auto")
    key = workload_key(model, model_name=name, input_shape=entry.default_input, batch=batch, optimizer="sgd",
                       candidates=candidates)
    choice = choose(candidates, build, batch=batch, key=key, cache=TuneCache())
    setting = choice.precision
    step = build(setting)
    flops = step_flops(step) / batch
    timing = BenchSettings(batch=batch, warmup=WARMUP, repeats=repeats, min_seconds=min_seconds)

    def step_without_kernels() -> None:
        with kernels_off():
            step()

    rates = best_rates({"step": step, "without_kernels": step_without_kernels}, batch, timing)
    rate = rates["step"]
    if setting.name not in peaks:
        peaks[setting.name] = matmul_peak(setting.name)
    achieved = rate * flops
    return {"model": name, "input": "x".join(map(str, entry.default_input)), "batch": batch,
            "setting": setting.label, "chosen_by": choice.source, "images_per_s": rate,
            "images_per_s_without_kernels": rates["without_kernels"], "kernel_speedup": rate / rates["without_kernels"],
            "train_flops_per_image": flops, "achieved_flops": achieved, "dtype": setting.name,
            "peak_flops": peaks[setting.name], "mfu": achieved / peaks[setting.name]}


def bench_train(names: list[str], *, batch: int = BATCH, threads: int | None = None, repeats: int = REPEATS,
                min_seconds: float = MIN_SECONDS, on_model: Callable[[str], None] | None = None) -> dict:
    """``bench_train_model`` for each of ``names``; the peaks are measured once per dtype."""
    import torch

    from cnnlab.bench.models import environment

    if threads:
        torch.set_num_threads(threads)
    keep_freed_memory()  # as training does (cnnlab.engine.session.setup)
    load_before = os.getloadavg()[1]
    peaks: dict[str, float] = {}
    results = []
    for name in names:
        if on_model is not None:
            on_model(name)
        results.append(bench_train_model(name, batch=batch, peaks=peaks, repeats=repeats, min_seconds=min_seconds))
    load = f"5-min load average {load_before:.1f} before, {os.getloadavg()[1]:.1f} after"
    return {"environment": environment(), "load": load, "peaks": peaks, "results": results}


def time_to_accuracy(recipe: str, overrides: list[str] = (), *, output_dir: str | None = None) -> dict:
    """Train ``recipe`` once and return its curve: after each epoch, the training seconds so far
    and the validation accuracy; then the test accuracy, evaluated once at the end."""
    from cnnlab.config import load_recipe
    from cnnlab.engine.fit import fit
    from cnnlab.engine.progress import Progress

    config = load_recipe(recipe, [*overrides, *([f"output_dir={output_dir}"] if output_dir else [])])
    curve: list[dict] = []

    def record(row) -> None:
        seconds = (curve[-1]["seconds"] if curve else 0.0) + row.wall_time
        curve.append({"epoch": row.epoch, "seconds": seconds, "val_acc": row.val_acc, "train_loss": row.train_loss})

    summary = fit(config, callbacks=[record], progress=Progress(quiet=True))
    return {"recipe": recipe, "run_dir": summary.run_dir, "curve": curve,
            "test_acc": summary.test.acc if summary.test else None, "train_wall_s": summary.time["train_wall_s"],
            "settings": summary.settings, "status": summary.status}
