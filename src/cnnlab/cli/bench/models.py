"""``cnnlab bench models [PATTERN]``: training-step images/s of each model, fp32 vs bf16."""

from __future__ import annotations

import json
import sys

from cnnlab.cli.table import print_table

HELP = "training-step images/s of each model on CPU, fp32 vs bf16 autocast + channels_last"
ORDER = 20
DESCRIPTION = ("One step = zero_grad, forward, loss, backward, SGD (momentum 0.9) update, on random data at the "
               "model's design input. fp32 NCHW is the baseline; bf16 autocast with channels_last is timed against "
               "it in the same process, in alternating windows (cnnlab.bench.models says how).")


def add_arguments(parser) -> None:
    from cnnlab.bench import models as bench  # imports torch: only when this command's parser is built

    parser.add_argument("pattern", nargs="?", default="*", help="shell-style model name pattern (default: all)")
    parser.add_argument("--batch", type=int, default=bench.BATCH, help=f"images per step (default {bench.BATCH})")
    parser.add_argument("--warmup", type=int, default=bench.WARMUP,
                        help=f"untimed steps first (default {bench.WARMUP})")
    parser.add_argument("--steps", type=int, default=bench.MIN_STEPS,
                        help=f"timed steps per window, at least (default {bench.MIN_STEPS})")
    parser.add_argument("--min-seconds", type=float, default=bench.MIN_SECONDS,
                        help=f"time at least this long per window (default {bench.MIN_SECONDS})")
    parser.add_argument("--repeats", type=int, default=bench.REPEATS,
                        help=f"timed windows per variant, best kept (default {bench.REPEATS})")
    parser.add_argument("--max-memory-gb", type=float, default=bench.MAX_MEMORY_GB,
                        help=f"halve the batch of models that would need more (default {bench.MAX_MEMORY_GB})")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-bf16", action="store_true", help="time fp32 only")
    parser.add_argument("--json", action="store_true",
                        help="print JSON instead of a table, and nothing else on stdout (progress goes to stderr)")


def run(args) -> int:
    from cnnlab.bench import models as bench
    from cnnlab.models.registry import model_names

    settings = bench.BenchSettings(batch=args.batch, warmup=args.warmup, steps=args.steps,
                                   min_seconds=args.min_seconds, repeats=args.repeats,
                                   max_memory_gb=args.max_memory_gb, bf16=not args.no_bf16)
    report = bench.bench_models(model_names(args.pattern), settings, threads=args.threads,
                                on_model=lambda name: print(f"bench {name} ...", file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    headers = ["Model", "Input", "Batch", "fp32 img/s"] + ([] if args.no_bf16 else ["bf16+CL img/s", "bf16/fp32"])
    rows = []
    for r in report["results"]:
        row = [r["model"], r["input"], str(r["batch"]), f"{r['fp32']:.1f}"]
        if not args.no_bf16:
            row += [f"{r['bf16_cl']:.1f}", f"{r['ratio']:.2f}"]
        rows.append(row)
    title = (f"Training-step images/s, SGD, random data, best of {args.repeats} windows "
             f"({report['environment']}; {report['load']})")
    print_table(headers, rows, title=title)
    return 0
