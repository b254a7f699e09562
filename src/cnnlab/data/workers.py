"""Work spread over processes on every core, results back in task order, and never a hang.

``multiprocessing.Pool`` loses the task of a worker that dies (the OOM killer, a crash in a native
decoder) and then waits for its result forever. Here the parent watches each worker's pipe and its
process sentinel together, so a death is a one-line error at once. Each worker has two tasks queued,
so it never waits on the parent between them, and takes the next as it answers (fast workers take more).

Workers are forked on Linux: they start in milliseconds and inherit the data without pickling. That
is safe after torch was imported or used, for the reason torch's own DataLoader forks its workers on
Linux: the workers touch no torch, CUDA or OpenMP state, only Pillow and numpy. Measured with torch
loaded: a 2-worker fork pool starts and decodes 64 PNGs in 55-85 ms; forkserver and spawn take
~1.3 s, as each worker imports the parent's __main__ and its imports again (and a script without an
``if __name__ == "__main__":`` guard would run again). Elsewhere fork is unsafe (macOS system
libraries) or absent (Windows): spawn.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from multiprocessing.connection import wait
from typing import Any

from cnnlab.errors import CnnlabError

PREFETCH = 2  # tasks queued per worker: one running, one waiting in its pipe


def worker_count() -> int:
    """The cores this process may run on (a container's or taskset's limit, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def start_method() -> str:
    return "fork" if sys.platform.startswith("linux") else "spawn"


def _serve(conn, fn: Callable, setup: Callable | None, setup_args: tuple) -> None:
    """A worker: run ``fn`` on each (index, task) received until None; answer (index, ok, result)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the workers
    if setup is not None:
        setup(*setup_args)
    try:
        while (item := conn.recv()) is not None:
            index, task = item
            try:
                result = (index, True, fn(task))
            except Exception:  # noqa: BLE001  a bug, not a bad input (fn reports those): the parent raises it
                result = (index, False, traceback.format_exc())
            conn.send(result)
    except (EOFError, BrokenPipeError):  # the parent is gone: nothing left to answer
        pass


def process_map(fn: Callable[[Any], Any], tasks: list, workers: int, setup: Callable | None = None,
                setup_args: tuple = ()) -> Iterator[Any]:
    """``fn(task)`` for each task in ``workers`` processes (each runs ``setup(*setup_args)`` first),
    yielded in task order. Close the iterator (``contextlib.closing``) to stop the workers early."""
    context = multiprocessing.get_context(start_method())
    processes, pipes, finished = [], [], False
    try:
        with warnings.catch_warnings():  # Python >= 3.12 warns on any fork of a process with threads
            warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
            for _ in range(workers):
                parent, child = context.Pipe()
                process = context.Process(target=_serve, args=(child, fn, setup, setup_args), daemon=True)
                process.start()
                child.close()
                processes.append(process)
                pipes.append(parent)
        yield from _dispatch(tasks, processes, pipes)
        for pipe in pipes:  # every task answered: the workers wait for this to exit
            try:
                pipe.send(None)
            except OSError:  # this one has exited already, its work done
                pass
        finished = True
    finally:
        for process in processes:
            if finished:
                process.join(timeout=5)
            if process.is_alive():  # stopped early (an error, Ctrl-C, the caller closed us): no wait for busy work
                process.terminate()
            process.join()
        for pipe in pipes:
            pipe.close()


def _died(process) -> CnnlabError:
    process.join(timeout=1)
    return CnnlabError(f"a worker process died (exit code {process.exitcode}; -9 is usually the out-of-memory "
                       "killer) with its work unfinished; use fewer cores or smaller images")


def _dispatch(tasks: list, processes: list, pipes: list) -> Iterator[Any]:
    queue = iter(enumerate(tasks))
    owed = [0] * len(pipes)  # tasks sent to each worker and not yet answered

    def feed(w: int) -> None:
        item = next(queue, None)
        if item is not None:
            try:
                pipes[w].send(item)
            except OSError:  # the worker is gone: the task would be lost
                raise _died(processes[w]) from None
            owed[w] += 1

    for w in range(len(pipes)):
        for _ in range(PREFETCH):
            feed(w)
    owner = {pipe: w for w, pipe in enumerate(pipes)} | {p.sentinel: w for w, p in enumerate(processes)}
    results: dict[int, Any] = {}
    done = 0
    while done < len(tasks):
        for ready in wait([handle for handle, w in owner.items() if owed[w]]):  # the workers still owing
            w = owner[ready]
            try:
                while owed[w] and pipes[w].poll():  # answers stay readable after a worker exits
                    index, ok, result = pipes[w].recv()
                    if not ok:
                        raise RuntimeError(f"a worker process failed:\n{result}")
                    owed[w] -= 1
                    results[index] = result
                    feed(w)
            except (EOFError, OSError):  # the worker closed its end (or died) without answering
                raise _died(processes[w]) from None
            if owed[w] and not processes[w].is_alive():
                raise _died(processes[w])
        while done in results:
            yield results.pop(done)
            done += 1
