"""Keep freed tensor memory in the process, so a training step does not fault its pages in again.

PyTorch's CPU tensors come from ``malloc``. glibc serves blocks above its mmap threshold with a
fresh ``mmap`` and gives them back with ``munmap`` on free, and it trims the top of its heap
back to the kernel; the threshold adapts only up to a point. A training step allocates and
frees the same activations every time, so until glibc's threshold had adapted every step
touched them as new pages: on resnet20 at batch 256 (bf16, 2 cores, Zen 4) 17,000-39,000 page
faults and 38-77 ms of kernel time a step. Whether a process gained depended on its allocation
history (1.14x for the first model `cnnlab bench train` times, within noise for the later ones;
docs/BENCHMARKS.md); with these settings it no longer does. Intel's PyTorch CPU tuning guide
fixes this by preloading jemalloc
or tcmalloc; glibc's own ``mallopt`` does it from inside the process, with nothing to install.

The price is that the heap keeps the largest step's memory until the process ends, which is
what a training process wants anyway. ``CNNLAB_KEEP_FREED_MEMORY=0`` in the environment leaves
glibc's defaults alone (to measure the difference, or to share a small machine's memory).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

OPT_OUT = "CNNLAB_KEEP_FREED_MEMORY"  # "0": leave glibc's defaults

# mallopt's parameter numbers, from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit): blocks below come from the heap
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: give the heap's free top back only past 2 GiB
TOP_PAD = 64 << 20  # grow the heap 64 MiB at a time: fewer brk calls while the first steps find their peak


@functools.cache
def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed memory for reuse; True when it took the settings.

    Safe to call many times: the first call decides. Where the C library is not glibc (macOS,
    musl, Windows) it returns False and changes nothing. Under a preloaded jemalloc or tcmalloc,
    which keep freed memory themselves, the settings reach a malloc that is not in use.
    """
    if os.environ.get(OPT_OUT) == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD))
    return all(mallopt(param, value) == 1 for param, value in settings)
