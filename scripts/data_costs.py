"""Where the data path's time goes: the figures docs/BENCHMARKS.md quotes for issue 9 beside
``cnnlab bench data``'s ratios.

    .venv/bin/python scripts/data_costs.py jitter            colour jitter's steps, ms per 256x3x32x32 batch
    .venv/bin/python scripts/data_costs.py folder DIR        listing and stat of an image folder; decode per file

``jitter`` times each step of ``apply_color_jitter`` alone and the whole op with each image's own
order and with the fixed order, glibc keeping freed memory as a training process does
(``CNNLAB_KEEP_FREED_MEMORY=0`` in the environment: glibc's defaults). Run it against another
checkout with ``PYTHONPATH=/tmp/old/src`` (``git worktree add /tmp/old REV``). ``folder`` takes a
folder ``cnnlab data export`` wrote: listing the names, then listing with one stat per file on 1,
2 and 4 threads (what a cached load must do), then decoding its first 4,000 files on 1 and 2
processes. Medians of 5 rounds.
"""

import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from cnnlab.allocator import keep_freed_memory

ROUNDS = 5
STEPS = ("brightness", "contrast", "saturation", "hue")


def median_ms(fn, repeats: int) -> float:
    fn()  # warm up kernels and the allocator
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        times.append((time.perf_counter() - start) / repeats * 1e3)
    return statistics.median(times)


def jitter() -> None:
    from cnnlab.data.augment_color import _jitter_step, apply_color_jitter, sample_color_jitter

    keep_freed_memory()
    x = torch.randint(0, 256, (256, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    factors = sample_color_jitter(256, torch.Generator().manual_seed(0), 0.4, 0.4, 0.4, 0.1)
    pixels = x.float()
    print(f"colour jitter (0.4, 0.4, 0.4, hue 0.1) on 256x3x32x32, {torch.get_num_threads()} threads, "
          f"ms per batch (median of {ROUNDS} rounds)")
    for k, name in enumerate(STEPS):
        print(f"  {name:<28} {median_ms(lambda k=k: _jitter_step(pixels.clone(), k, factors[k]), 40):7.2f}")
    fixed = factors._replace(order=None)
    print(f"  {'whole, each image its order':<28} {median_ms(lambda: apply_color_jitter(x, factors), 40):7.2f}")
    print(f"  {'whole, fixed order':<28} {median_ms(lambda: apply_color_jitter(x, fixed), 40):7.2f}")


def folder(root: str) -> None:
    from cnnlab.data.folder_decode import decode_files
    from cnnlab.data.imagefolder import image_files

    folders = [os.path.join(dirpath, d) for dirpath, dirs, _ in os.walk(root) for d in dirs]
    leaves = [f for f in folders if not any(os.path.isdir(os.path.join(f, n)) for n in os.listdir(f))]

    def names(path):
        with os.scandir(path) as entries:
            return [e.name for e in entries]

    def stats(path):
        with os.scandir(path) as entries:
            return [(e.name, (st := e.stat()).st_size, st.st_mtime_ns) for e in entries]

    count = sum(len(names(f)) for f in leaves)
    print(f"{root}: {count:,} files in {len(leaves)} folders, ms (median of {ROUNDS} rounds)")
    print(f"  {'list names':<34} {median_ms(lambda: [names(f) for f in leaves], 1):8.1f}")
    for threads in (1, 2, 4):
        with ThreadPoolExecutor(threads) as pool:
            ms = median_ms(lambda: list(pool.map(stats, leaves)), 1)
        print(f"  {f'list + stat, {threads} thread(s)':<34} {ms:8.1f}  ({ms * 1e3 / count:.2f} us a file)")
    print(f"  {'image_files (the loader listing)':<34} {median_ms(lambda: [image_files(f) for f in leaves], 1):8.1f}")
    paths = sorted(p for f in leaves for p, _, _ in image_files(f))[:4000]
    for workers in (1, 2):
        ms = median_ms(lambda: decode_files(paths, workers=workers), 1)
        print(f"  {f'decode {len(paths):,} files, {workers} process(es)':<34} {ms:8.1f}  "
              f"({ms * 1e3 / len(paths):.1f} us a file)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["jitter"]:
        jitter()
    elif sys.argv[1:2] == ["folder"] and len(sys.argv) == 3:
        folder(sys.argv[2])
    else:
        sys.exit(__doc__)
