"""A/B of the training-batch augmentation path in one process: another checkout's
``cnnlab/data/augment.py`` against this one's, on random_crop (pad 4) + flip_lr of a uint8
256x3x32x32 batch, in turns, with both outputs checked equal first.

    git worktree add /tmp/old e83ca1b
    .venv/bin/python scripts/augment_ab.py /tmp/old/src
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python scripts/augment_ab.py /tmp/old/src

Prints images/s of each (median of 15 windows of 50 batches, 2 threads) and new / old.
"""

import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

import cnnlab.data.augment as new

OPS = [{"name": "random_crop", "padding": 4}, {"name": "flip_lr"}]  # the recipes' crop and flip
WINDOWS, BATCHES = 15, 50


def load(path: Path):
    spec = importlib.util.spec_from_file_location("old_augment", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(old_src: str) -> None:
    old = load(Path(old_src) / "cnnlab" / "data" / "augment.py")
    torch.set_num_threads(2)
    x = torch.randint(0, 256, (256, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    ops = {"old": old.build_augmentations(OPS), "new": new.build_augmentations(OPS)}
    for a, b in zip(ops["old"], ops["new"]):  # the same draws give the same images
        assert torch.equal(a(x, torch.Generator().manual_seed(1)), b(x, torch.Generator().manual_seed(1)))
    generator = torch.Generator().manual_seed(0)
    rates = {"old": [], "new": []}
    for _ in range(WINDOWS):
        for side in ("old", "new"):
            start = time.perf_counter()
            for _ in range(BATCHES):
                y = x
                for op in ops[side]:
                    y = op(y, generator)
            rates[side].append(BATCHES * len(x) / (time.perf_counter() - start))
    o, n = statistics.median(rates["old"]), statistics.median(rates["new"])
    print(f"{torch.backends.cpu.get_cpu_capability()}: images/s old {o:,.0f}, new {n:,.0f}, new / old {n / o:.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
