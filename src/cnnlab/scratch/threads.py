"""Thread counts for NumPy's BLAS (and torch, in the benchmark), set for one block of code.

The scratch commands default to 1 BLAS thread. On a 2-core machine where another process keeps
one core busy, OpenBLAS's second thread waits for that core at every product: measured there,
the fast conv backward took 790 ms with the default 2 threads and 3.5 ms with 1, and a 3-epoch
Fashion-MNIST run 51 s against 3.7 s. On a machine of your own, ``--threads 0`` lets NumPy
choose.
"""

from __future__ import annotations

import contextlib


def blas_threads(threads: int | None):
    """A context that limits NumPy's BLAS to ``threads`` (0 or None: leave it as it is)."""
    if not threads:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads, user_api="blas")


@contextlib.contextmanager
def same_threads(threads: int | None):
    """Give NumPy's BLAS and torch the same number of threads, and restore torch's afterwards."""
    import torch

    if not threads:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with blas_threads(threads):
            yield
    finally:
        torch.set_num_threads(before)
