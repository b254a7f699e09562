"""``cnnlab bench data``: batched augmentation against torchvision's DataLoader, and the image-folder cache."""

from __future__ import annotations

HELP = "batched augmentation vs torchvision's DataLoader; image-folder cache; round trip"
ORDER = 15
DESCRIPTION = ("Time random crop (pad 4) + flip + colour jitter on 3x32x32 images at batch 256, batched, against "
               "torchvision v2's per-sample transforms through a DataLoader (the best of num_workers 0, 1, 2), with "
               "the output statistics of both; then export Fashion-MNIST as 70,000 PNGs and time its first load "
               "(decode) and second (cache), checking the round trip byte for byte.")
EPILOG = """\
examples: cnnlab bench data
          cnnlab bench data --skip-folder
          cnnlab bench data --folder /tmp/fmnist-png --train      also trains the main recipe on both, 3 seeds (~25 min)"""


def add_arguments(parser) -> None:
    parser.add_argument("--images", type=int, default=10_240, help="images augmented per pass (default 10,240)")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes of the batched ops; the median is kept")
    parser.add_argument("--skip-folder", action="store_true", help="only the augmentation benchmark")
    parser.add_argument("--folder", help="export Fashion-MNIST here (kept) instead of a temporary folder"
                        ).complete = "directory"
    parser.add_argument("--train", action="store_true",
                        help="also train the main recipe on the IDX files and on the folder, and compare test accuracy")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of each --train run (default 20, as make run)")
    parser.add_argument("--seeds", type=int, default=3, help="--train: seeds 0..N-1 on each side (default 3)")


def run(args) -> int:
    from cnnlab.cli.table import print_table
    from cnnlab.errors import CnnlabError

    if args.images < 256 or min(args.rounds, args.epochs, args.seeds) < 1:
        raise CnnlabError("--images must be at least 256, --rounds, --epochs and --seeds at least 1")
    if args.train and args.skip_folder:
        raise CnnlabError("--train trains on the exported folder; drop --skip-folder")
    from cnnlab.bench.data import STATS_TOLERANCE, bench_augmentation, bench_imagefolder, bench_training

    aug = bench_augmentation(args.images, rounds=args.rounds)
    rows = [["batched (cnnlab.data.augment)", f"{aug['rate']:,.0f}", _stats(aug["mean"], aug["std"]), "1.00x"]]
    for (on, workers), loader in aug["loaders"].items():
        best = " (fastest)" if (on, workers) == aug["best"] else ""
        rows.append([f"DataLoader + v2 per sample on {on}, num_workers={workers}{best}", f"{loader['rate']:,.0f}",
                     f"{_stats(loader['mean'], loader['std'])} (gap {loader['gap']:.4f})",
                     f"{loader['rate'] / aug['rate']:.3f}x"])
    print_table(["crop pad 4 + flip + colour jitter", "images/s", "output mean / std per channel", "vs batched"], rows,
                title=f"3x32x32, batch {aug['batch']}, {aug['images']:,} images, {aug['threads']} threads")
    on, workers = aug["best"]
    print(f"batched is {aug['speedup']:.1f}x the fastest DataLoader (v2 on {on}, num_workers={workers}; issue 9: "
          f">= 10x); output statistics {'agree' if aug['same_stats'] else 'DIFFER'} with v2 on float32 "
          f"(largest gap {aug['stats_gap']:.4f}, limit {STATS_TOLERANCE}); v2 on uint8 truncates after each step")
    if args.skip_folder:
        return 0 if aug["same_stats"] else 1
    folder = bench_imagefolder(args.folder)
    print_table(["Fashion-MNIST as PNG folders", "seconds", "vs first load"], [
        [f"export ({folder['files']:,} PNG files)", f"{folder['export_s']:.1f}", ""],
        ["first load (decode on all cores, write cache)", f"{folder['first_s']:.2f}", "1.00x"],
        ["second load (cache)", f"{folder['second_s']:.3f}", f"{folder['speedup']:.1f}x faster"],
    ], title="")
    print(f"second load {folder['speedup']:.1f}x faster (issue 9: >= 20x), first {folder['first_s']:.1f} s "
          f"(<= 60 s); round trip {'byte-identical' if folder['identical'] else 'DIFFERS'} to the IDX images and labels")
    ok = aug["same_stats"] and folder["identical"]
    if args.train:
        if not args.folder:
            raise CnnlabError("--train needs --folder DIR: the exported folder must outlive the export step")
        result = bench_training(args.folder, args.epochs, args.seeds)
        rows = []
        for arm, name in (("idx", "IDX files"), ("folder", "PNG folder")):
            rows += [[name, str(r["seed"]), f"{r['test_acc']:.2%}", r["run_dir"]] for r in result[arm]["runs"]]
            rows.append([name, "mean", f"{result[arm]['mean']:.2%}", ""])
        print_table([f"main recipe, {args.epochs} epochs", "seed", "test accuracy (evaluated once)", "run"], rows,
                    title="")
        print(f"the means differ by {result['gap_points']:.2f} points (issue 9: <= 0.3)")
    return 0 if ok else 1


def _stats(mean: list[float], std: list[float]) -> str:
    return " ".join(f"{m:.3f}/{s:.3f}" for m, s in zip(mean, std))
