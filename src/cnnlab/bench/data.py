"""The data benchmarks (``cnnlab bench data``, issue 9), each against a baseline in the same process.

- Augmentation: random crop (pad 4) + horizontal flip + colour jitter on 3x32x32 uint8 images at
  batch 256, batched (``cnnlab.data.augment``) against torchvision v2's per-sample transforms
  through torch's DataLoader, the best of num_workers 0, 1 and 2. Both output float32 in [0, 1];
  their per-channel means and stds must agree, or the comparison would not be of the same work.
- Image-folder cache: Fashion-MNIST exported as 70,000 PNGs, loaded cold (decoded on all cores)
  and then warm (the uint8 cache), and the round trip checked byte for byte against the IDX files.
- Optionally (``--train``) the main recipe trained on the folder and on the IDX files.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np
import torch

from cnnlab.allocator import keep_freed_memory
from cnnlab.data import load_dataset
from cnnlab.data.augment import build_augmentations

CROP_FLIP_JITTER = [  # ECE 661 lab 2's crop and flip, with timm's colour jitter 0.4 and a hue shift
    {"name": "random_crop", "padding": 4},
    {"name": "flip_lr"},
    {"name": "color_jitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1},
]
STATS_TOLERANCE = 0.005  # per-channel mean and std of the outputs, in [0, 1] units: sampling noise is ~0.001


def _images(n: int) -> torch.Tensor:
    """n 3x32x32 uint8 images with structure (smooth class templates plus noise), as CIFAR-10 is."""
    data = load_dataset("synthetic", shape=(3, 32, 32), train_size=n, test_size=1, noise=0.2)
    return torch.from_numpy(data.train_images)  # (n, 3, 32, 32)


class ChannelMoments:
    """Per-channel mean and std of float batches (B, C, H, W), summed batch by batch in float64."""

    def __init__(self, channels: int = 3) -> None:
        self.total = torch.zeros(channels, dtype=torch.float64)
        self.squares = torch.zeros(channels, dtype=torch.float64)
        self.count = 0

    def add(self, x: torch.Tensor) -> None:
        self.total += x.sum(dim=(0, 2, 3), dtype=torch.float64)
        self.squares += x.double().square().sum(dim=(0, 2, 3))
        self.count += x.numel() // x.shape[1]

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        mean = self.total / self.count
        return mean.numpy(), (self.squares / self.count - mean**2).clamp_min(0).sqrt().numpy()


def batched_rate(images: torch.Tensor, batch_size: int, rounds: int) -> tuple[float, np.ndarray, np.ndarray]:
    """images/s of the batched ops over ``images`` (median of ``rounds`` passes), and the
    per-channel mean and std of their float output."""
    ops = build_augmentations(CROP_FLIP_JITTER)
    generator = torch.Generator().manual_seed(0)
    times, moments = [], ChannelMoments()
    for r in range(rounds + 1):  # the first pass warms the kernels and the allocator up, untimed
        start = time.perf_counter()
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size]  # (B, 3, 32, 32) uint8
            for op in ops:
                x = op(x, generator)
            x = x.float().div_(255)  # what v2.ToDtype(float32, scale=True) gives
            if r == 1:  # statistics outside the clock's interest: one pass is enough
                moments.add(x)
        if r:
            times.append(time.perf_counter() - start)
    return len(images) / median(times), *moments.result()


def dataloader_rate(images: torch.Tensor, batch_size: int, num_workers: int,
                    on: str = "float32") -> tuple[float, np.ndarray, np.ndarray]:
    """images/s of torchvision v2's per-sample transforms through a DataLoader with ``num_workers``,
    timed from the first batch to the last (worker start-up excluded, in the baseline's favour), and
    the per-channel mean and std of its output. ``on``: the dtype the transforms work on: float32
    (ToDtype first: no rounding between steps, as ours) or uint8 (ToDtype last: v2 truncates to
    uint8 after each jitter step, which darkens the output by about half a grey level a step)."""
    from torchvision.transforms import v2

    to_float = v2.ToDtype(torch.float32, scale=True)
    ops = [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(),
           v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)]
    transform = v2.Compose([to_float, *ops] if on == "float32" else [*ops, to_float])

    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            return transform(images[i]), 0

    loader = torch.utils.data.DataLoader(Images(), batch_size=batch_size, shuffle=True, num_workers=num_workers,
                                         generator=torch.Generator().manual_seed(0))
    moments, counted, start = ChannelMoments(), 0, None
    for x, _ in loader:
        if start is None:
            start = time.perf_counter()
        else:
            counted += len(x)
        moments.add(x)
    return counted / (time.perf_counter() - start), *moments.result()


def bench_augmentation(n_images: int = 10_240, batch_size: int = 256, rounds: int = 3) -> dict:
    """The batched ops against the best DataLoader setting: rates, output statistics, the ratio."""
    keep_freed_memory()  # as a training process does (cnnlab.engine.session); the DataLoader's workers inherit it
    images = _images(n_images)
    rate, mean, std = batched_rate(images, batch_size, rounds)
    loaders = {}  # each setting's faster of two passes: its rate varies by up to 1.5x from pass to pass here
    for _ in range(2):
        for on in ("float32", "uint8"):
            for workers in (0, 1, 2):
                result = dataloader_rate(images, batch_size, workers, on)
                if (on, workers) not in loaders or result[0] > loaders[on, workers][0]:
                    loaders[on, workers] = result
    best = max(loaders, key=lambda key: loaders[key][0])

    def gap(key) -> float:  # the largest per-channel difference in mean or std from ours
        return float(max(np.abs(mean - loaders[key][1]).max(), np.abs(std - loaders[key][2]).max()))

    # the statistics are compared with the float pipeline, which rounds as ours does (once)
    reference = max(((on, w) for on, w in loaders if on == "float32"), key=lambda key: loaders[key][0])
    return {"images": n_images, "batch": batch_size, "threads": torch.get_num_threads(), "rate": rate,
            "mean": mean.tolist(), "std": std.tolist(),
            "loaders": {key: {"rate": r, "mean": m.tolist(), "std": d.tolist(), "gap": gap(key)}
                        for key, (r, m, d) in loaders.items()},
            "best": best, "reference": reference, "stats_gap": gap(reference),
            "same_stats": gap(reference) <= STATS_TOLERANCE, "speedup": rate / loaders[best][0]}


def _timed_load(root: Path) -> tuple[float, object]:
    start = time.perf_counter()
    dataset = load_dataset("imagefolder", root)
    return time.perf_counter() - start, dataset


def same_as_idx(folder, idx) -> bool:
    """The folder's parts equal the IDX parts byte for byte, as the export orders them: by class,
    then in the files' order (a stable sort of the labels); its classes are the export's class folders."""
    from cnnlab.data.export_folder import class_folder_names

    if folder.classes != tuple(class_folder_names(idx.classes)) or folder.parts().keys() != idx.parts().keys():
        return False
    for (images, labels), (idx_images, idx_labels) in zip(folder.parts().values(), idx.parts().values()):
        order = np.argsort(idx_labels, kind="stable")
        if not (np.array_equal(labels, idx_labels[order]) and np.array_equal(images, idx_images[order])):
            return False
    return True


def bench_imagefolder(folder: str | Path | None = None) -> dict:
    """Export Fashion-MNIST as PNGs (into ``folder`` when it is empty or missing, else a temporary
    one), then time the first load (cold cache) and the second (warm), and check the round trip."""
    from cnnlab.data.imagefolder import write_imagefolder

    idx = load_dataset("fashion_mnist")
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-") as scratch:
        root = Path(folder) if folder else Path(scratch) / "fashion-mnist-png"
        written = write_imagefolder(idx, root)
        saved = os.environ.get("CNNLAB_CACHE_DIR")
        os.environ["CNNLAB_CACHE_DIR"] = str(Path(scratch) / "cache")  # cold: an empty cache of its own
        try:
            first_s, first = _timed_load(root)
            second_s, second = _timed_load(root)
        finally:
            if saved is None:
                os.environ.pop("CNNLAB_CACHE_DIR")
            else:
                os.environ["CNNLAB_CACHE_DIR"] = saved
        identical = same_as_idx(first, idx) and same_as_idx(second, idx)
    return {"files": written.total, "export_s": written.seconds, "root": str(root), "first_s": first_s,
            "second_s": second_s, "speedup": first_s / second_s, "identical": identical,
            "cache_hit": bool(second.notes.get("cache_hit"))}


def bench_training(folder: str | Path, epochs: int, seeds: int = 1) -> dict:
    """The main recipe for ``epochs`` (no time budget, so both plan the same schedule) with seeds
    0..seeds-1 on the IDX files and on the exported folder: each run's test accuracy, evaluated
    once at the end, and the gap between the two arms' means. The folder holds the same images,
    grouped by class, so the shuffles differ and the gap of one seed is mostly seed noise (the
    main job's test accuracy spans 0.4 points over seeds 0-2)."""
    from statistics import mean

    from cnnlab.config import load_recipe
    from cnnlab.config.recipes import find_recipe
    from cnnlab.engine.fit import fit
    from cnnlab.engine.progress import Progress

    fixed = [f"train.epochs={epochs}", "train.time_budget_s=null"]
    arms = {"idx": [], "folder": ["data.name=imagefolder", f"data.root={folder}"]}
    results: dict = {arm: {"runs": []} for arm in arms}
    for seed in range(seeds):
        for arm, extra in arms.items():
            config = load_recipe(find_recipe("fashion_mnist"), [*fixed, f"seed={seed}", *extra])
            summary = fit(config, progress=Progress(quiet=True))
            results[arm]["runs"].append({"seed": seed, "test_acc": summary.test.acc, "run_dir": str(summary.run_dir)})
    for arm in arms:
        results[arm]["mean"] = mean(r["test_acc"] for r in results[arm]["runs"])
    results["gap_points"] = 100 * abs(results["folder"]["mean"] - results["idx"]["mean"])
    return results
