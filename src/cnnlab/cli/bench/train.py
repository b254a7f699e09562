"""``cnnlab bench train [PATTERN...]``: training images/s, FLOPs per image and FLOP utilization."""

from __future__ import annotations

import json
import sys

from cnnlab.cli.table import print_table

HELP = "training images/s, FLOPs per image and model FLOP utilization; the fast recipe's time-to-accuracy"
ORDER = 15
DESCRIPTION = ("Times each model's training step at batch 256 in the setting `auto` picks on this machine, counts "
               "its FLOPs (forward and backward) and divides the FLOP/s by this machine's matrix-multiply peak "
               "for the same dtype, measured in the same process (model FLOP utilization). Then trains the fast "
               "recipe once and prints its time-to-accuracy curve (cnnlab.bench.train says how).")
EPILOG = """examples:
  cnnlab bench train                      convnet, resnet20, vgg_mini, then the fast recipe's curve
  cnnlab bench train 'resnet*' --no-curve
  ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 cnnlab bench train    as on an AVX2-only CPU"""


def add_arguments(parser) -> None:
    from cnnlab.bench import train as bench  # imports no torch: its functions import it when run

    parser.add_argument("patterns", nargs="*", metavar="PATTERN",
                        help=f"shell-style model name patterns (default: {' '.join(bench.DEFAULT_MODELS)})")
    parser.add_argument("--batch", type=int, default=bench.BATCH, help=f"images per step (default {bench.BATCH})")
    parser.add_argument("--repeats", type=int, default=bench.REPEATS,
                        help=f"timed windows per model, best kept (default {bench.REPEATS})")
    parser.add_argument("--min-seconds", type=float, default=bench.MIN_SECONDS,
                        help=f"time at least this long per window (default {bench.MIN_SECONDS})")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--curve", default="fast/fashion_mnist", metavar="RECIPE",
                        help="recipe whose time-to-accuracy curve is printed (default fast/fashion_mnist)")
    parser.add_argument("--no-curve", action="store_true", help="time the models only")
    parser.add_argument("--output-dir", help="where the curve's run folder goes (default: the recipe's, runs/)")
    parser.add_argument("--json", action="store_true",
                        help="print JSON instead of tables, and nothing else on stdout (progress goes to stderr)")


def run(args) -> int:
    from cnnlab.bench import train as bench
    from cnnlab.models.registry import model_names

    names = [n for p in (args.patterns or bench.DEFAULT_MODELS) for n in model_names(p)]
    report = bench.bench_train(names, batch=args.batch, threads=args.threads, repeats=args.repeats,
                               min_seconds=args.min_seconds,
                               on_model=lambda name: print(f"bench {name} ...", file=sys.stderr, flush=True))
    if not args.no_curve:
        print(f"training {args.curve} for its time-to-accuracy curve ...", file=sys.stderr, flush=True)
        report["curve"] = bench.time_to_accuracy(args.curve, output_dir=args.output_dir)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    peaks = ", ".join(f"{dtype} {flops / 1e9:,.0f} GFLOP/s" for dtype, flops in report["peaks"].items())
    rows = [[r["model"], r["input"], str(r["batch"]), r["setting"], f"{r['images_per_s']:,.0f}",
             f"{r['train_flops_per_image'] / 1e6:,.1f}", f"{r['achieved_flops'] / 1e9:,.1f}", f"{r['mfu']:.0%}",
             f"{r['images_per_s_without_kernels']:,.0f}", f"{r['kernel_speedup']:.2f}x"]
            for r in report["results"]]
    print_table(["Model", "Input", "Batch", "auto setting", "img/s", "train MFLOP/img", "GFLOP/s", "MFU",
                 "img/s, kernels off", "kernels"], rows,
                title=f"Training step at the auto setting; MFU against torch.mm's peak here ({peaks}) "
                      f"({report['environment']}; {report['load']})")
    if "curve" in report:
        curve = report["curve"]
        print()
        print_table(["epoch", "training s", "val acc"],
                    [[str(p["epoch"]), f"{p['seconds']:.1f}", f"{p['val_acc']:.2%}"] for p in curve["curve"]],
                    title=f"Time to accuracy: {curve['recipe']} ({curve['settings']['precision']}"
                          f"{' channels_last' if curve['settings']['channels_last'] else ''})")
        test = f"{curve['test_acc']:.2%}" if curve["test_acc"] is not None else "not evaluated"
        print(f"test accuracy, evaluated once at the end: {test} after {curve['train_wall_s']:.1f}s of training "
              f"({curve['run_dir']})")
    return 0
