"""``cnnlab scratch bench``: naive vs fast convolution and max pooling, with torch's CPU kernels
timed in the same process as the yardstick.

The shapes are cs231n's: x (100, 3, 31, 31), w (25, 3, 3, 3), stride 2, pad 1 for the
convolution; x (100, 3, 32, 32), 2x2 windows, stride 2 for the pooling. Every figure is the best
of several repeats (the least disturbed by other processes); the naive layers take seconds,
so they run fewer times. Ratios come from one process, so they compare like with like even
on a busy machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from cnnlab.scratch import conv_layers, fast_layers
from cnnlab.scratch.threads import same_threads

CONV_SHAPES = {"x": (100, 3, 31, 31), "w": (25, 3, 3, 3), "stride": 2, "pad": 1}
POOL_SHAPES = {"x": (100, 3, 32, 32), "size": 2, "stride": 2}
QUICK_CONV = {"x": (4, 3, 15, 15), "w": (5, 3, 3, 3), "stride": 2, "pad": 1}  # for tests: seconds, not minutes
QUICK_POOL = {"x": (4, 3, 16, 16), "size": 2, "stride": 2}


class BenchRow(NamedTuple):
    op: str
    naive_ms: float
    fast_ms: float
    torch_ms: float
    difference: float  # max |fast - naive| / max |naive|: the two agree to rounding

    @property
    def speedup(self) -> float:
        return self.naive_ms / self.fast_ms

    @property
    def fast_per_torch(self) -> float:
        return self.fast_ms / self.torch_ms


def best_ms(fn: Callable[[], object], repeats: int, warmup: bool = True) -> float:
    """The fastest of ``repeats`` calls, in milliseconds, after one untimed warm-up call (the
    naive layers skip it: they take seconds, and their first call is no slower)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def difference(fast, naive) -> float:
    """max |fast - naive| / max |naive| over the results (a tuple for the conv backward). Relative
    to the largest entry, not elementwise: float32 entries near 0 carry no relative precision."""
    pairs = zip(fast, naive) if isinstance(fast, tuple) else [(fast, naive)]
    return max(float(np.max(np.abs(f - n)) / max(np.max(np.abs(n)), 1e-300)) for f, n in pairs)


def bench_conv(shapes: dict, dtype, repeats: int, naive_repeats: int, rng: np.random.Generator) -> list[BenchRow]:
    import torch
    import torch.nn.functional as F

    stride, pad = shapes["stride"], shapes["pad"]
    x, w = rng.standard_normal(shapes["x"]).astype(dtype), rng.standard_normal(shapes["w"]).astype(dtype)
    b = rng.standard_normal(shapes["w"][0]).astype(dtype)
    naive_out, naive_cache = conv_layers.conv_forward_naive(x, w, b, stride=stride, pad=pad)
    fast_out, fast_cache = fast_layers.conv_forward_fast(x, w, b, stride=stride, pad=pad)
    dout = rng.standard_normal(naive_out.shape).astype(dtype)
    tensors = [torch.from_numpy(a).requires_grad_() for a in (x, w, b)]
    torch_out = F.conv2d(*tensors, stride=stride, padding=pad)
    torch_dout = torch.from_numpy(dout)
    with torch.no_grad():
        torch_forward = best_ms(lambda: F.conv2d(*tensors, stride=stride, padding=pad), repeats)
    torch_backward = best_ms(lambda: torch.autograd.grad(torch_out, tensors, torch_dout, retain_graph=True), repeats)
    naive_grads = conv_layers.conv_backward_naive(dout, naive_cache)
    fast_grads = fast_layers.conv_backward_fast(dout, fast_cache)
    return [
        BenchRow("conv forward",
                 best_ms(lambda: conv_layers.conv_forward_naive(x, w, b, stride=stride, pad=pad), naive_repeats, False),
                 best_ms(lambda: fast_layers.conv_forward_fast(x, w, b, stride=stride, pad=pad), repeats),
                 torch_forward, difference(fast_out, naive_out)),
        BenchRow("conv backward",
                 best_ms(lambda: conv_layers.conv_backward_naive(dout, naive_cache), naive_repeats, False),
                 best_ms(lambda: fast_layers.conv_backward_fast(dout, fast_cache), repeats),
                 torch_backward, difference(fast_grads, naive_grads)),
    ]


def bench_pool(shapes: dict, dtype, repeats: int, naive_repeats: int, rng: np.random.Generator) -> list[BenchRow]:
    import torch
    import torch.nn.functional as F

    size, stride = shapes["size"], shapes["stride"]
    kwargs = {"pool_height": size, "pool_width": size, "stride": stride}
    x = rng.standard_normal(shapes["x"]).astype(dtype)
    naive_out, naive_cache = conv_layers.max_pool_forward_naive(x, **kwargs)
    fast_out, fast_cache = fast_layers.max_pool_forward_fast(x, **kwargs)
    dout = rng.standard_normal(naive_out.shape).astype(dtype)
    tensor = torch.from_numpy(x).requires_grad_()
    torch_out = F.max_pool2d(tensor, size, stride)
    torch_dout = torch.from_numpy(dout)
    with torch.no_grad():
        torch_forward = best_ms(lambda: F.max_pool2d(tensor, size, stride), repeats)
    torch_backward = best_ms(lambda: torch.autograd.grad(torch_out, tensor, torch_dout, retain_graph=True), repeats)
    return [
        BenchRow("max pool forward",
                 best_ms(lambda: conv_layers.max_pool_forward_naive(x, **kwargs), naive_repeats, False),
                 best_ms(lambda: fast_layers.max_pool_forward_fast(x, **kwargs), repeats),
                 torch_forward, difference(fast_out, naive_out)),
        BenchRow("max pool backward",
                 best_ms(lambda: conv_layers.max_pool_backward_naive(dout, naive_cache), naive_repeats, False),
                 best_ms(lambda: fast_layers.max_pool_backward_fast(dout, fast_cache), repeats),
                 torch_backward, difference(fast_layers.max_pool_backward_fast(dout, fast_cache),
                                            conv_layers.max_pool_backward_naive(dout, naive_cache))),
    ]


def run_bench(dtype: str = "float64", repeats: int = 20, naive_repeats: int = 2, quick: bool = False,
              threads: int | None = 1, seed: int = 0) -> list[BenchRow]:
    """Time every op at the cs231n shapes (``quick``: tiny shapes, for tests). ``threads`` sets
    both NumPy's BLAS and torch to that many threads for the duration (0 or None: their defaults;
    ``threads.py`` says why 1)."""
    rng = np.random.default_rng(seed)
    conv, pool = (QUICK_CONV, QUICK_POOL) if quick else (CONV_SHAPES, POOL_SHAPES)
    dtype = np.dtype(dtype).type
    with same_threads(threads):
        rows = bench_conv(conv, dtype, repeats, naive_repeats, rng)
        return rows + bench_pool(pool, dtype, repeats, naive_repeats, rng)


def format_table(rows: list[BenchRow]) -> str:
    head = (f"{'op':<18} {'naive ms':>9} {'fast ms':>8} {'speedup':>8} {'torch ms':>9} {'fast/torch':>10} "
            f"{'difference':>10}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.op:<18} {r.naive_ms:>9.1f} {r.fast_ms:>8.3f} {r.speedup:>7.0f}x {r.torch_ms:>9.3f} "
                     f"{r.fast_per_torch:>9.2f}x {r.difference:>10.1e}")
    return "\n".join(lines)


def describe_setup(dtype: str, quick: bool, threads: int | None) -> str:
    """One line: shapes, dtype, versions and thread counts, to print above the table."""
    import torch
    from threadpoolctl import threadpool_info

    conv, pool = (QUICK_CONV, QUICK_POOL) if quick else (CONV_SHAPES, POOL_SHAPES)
    blas = ", ".join(f"{i['internal_api']}" for i in threadpool_info() if i["user_api"] == "blas") or "BLAS"
    count = f"{threads} thread{'s' if threads > 1 else ''} each" if threads else "default threads"
    return (f"conv x {conv['x']} w {conv['w']} stride {conv['stride']} pad {conv['pad']}; pool x {pool['x']} "
            f"{pool['size']}x{pool['size']} stride {pool['stride']}; {dtype}; NumPy {np.__version__} ({blas}), "
            f"torch {torch.__version__}; {count}")
