"""How long ``cnnlab predict`` takes from command to answer, against ``python -c "import torch"``.

Both are whole processes started the same way (``sys.executable``), in turns (A B A B ...) so a
drifting machine slows both alike; the figure is the median of each and the median of the
pairwise differences. Issue 10's bound: predict at most 1 s more than importing torch.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 5  # pairs counted, after one pair of warm-up (the page cache, the first .pyc compile)


def wall_seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def bench_predict(run_dir: str | Path, image: str | Path, *, runs: int = RUNS) -> dict:
    """Median wall seconds of ``import torch`` and of ``cnnlab predict RUN_DIR IMAGE``, and their difference."""
    baseline = [sys.executable, "-c", "import torch"]
    predict = [sys.executable, "-m", "cnnlab", "predict", str(run_dir), str(image)]
    wall_seconds(baseline), wall_seconds(predict)  # warm-up pair
    pairs = [(wall_seconds(baseline), wall_seconds(predict)) for _ in range(runs)]
    torch_s, predict_s = [p[0] for p in pairs], [p[1] for p in pairs]
    return {"runs": runs, "import_torch_s": statistics.median(torch_s), "predict_s": statistics.median(predict_s),
            "extra_s": statistics.median(b - a for a, b in pairs), "pairs": pairs}
