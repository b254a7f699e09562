"""``cnnlab sweep --workers 2`` against ``--workers 1`` on the same 4-trial grid, whole processes.

Both are the real command (``sys.executable -m cnnlab sweep``), started in turns (1 2 1 2 ...)
so a drifting machine slows both alike; each writes its sweep into a fresh temporary folder.
The figure is the median wall time of each and the median of the pairwise ratios. Issue 11's
bound: 2 workers on 2 cores at least 1.6x faster than 1.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time

RUNS = 2  # pairs counted, after none of warm-up: each sweep already starts several processes
# Four small trials of about 5 s of training each: quick_test's simple_nn on synthetic 1x32x32
# images at batch 32, the size of the ablation sweeps' trials (a whole command starts in about 5 s:
# torch, its compiler front end and Optuna imported, the study created).
GRID = "optim.lr=0.003,0.002,0.001,0.0005"
OVERRIDES = ["train.epochs=3", "data.batch_size=32",
             "data.options={shape: [1, 32, 32], train_size: 16000, test_size: 500, noise: 1.0}"]


def sweep_seconds(workers: int, overrides: list[str]) -> float:
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-sweep-") as out:
        command = [sys.executable, "-m", "cnnlab", "sweep", "quick_test", *overrides, "--grid", GRID,
                   "--workers", str(workers), "--quiet", "--out", out]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        return time.perf_counter() - start


def bench_sweep(*, runs: int = RUNS, overrides: list[str] | None = None) -> dict:
    """Median wall seconds of the grid with 1 and with 2 workers, and the median ratio."""
    words = OVERRIDES if overrides is None else overrides
    pairs = [(sweep_seconds(1, words), sweep_seconds(2, words)) for _ in range(runs)]
    one, two = [p[0] for p in pairs], [p[1] for p in pairs]
    return {"runs": runs, "grid": GRID, "overrides": words, "workers_1_s": statistics.median(one),
            "workers_2_s": statistics.median(two), "speedup": statistics.median(a / b for a, b in pairs),
            "pairs": pairs}
