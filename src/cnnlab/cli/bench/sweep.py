"""``cnnlab bench sweep``: a 4-trial grid with --workers 2 against --workers 1, whole processes."""

from __future__ import annotations

HELP = "cnnlab sweep with 2 workers against 1 on a 4-trial grid of small runs"
ORDER = 45
EPILOG = "example: cnnlab bench sweep --runs 3"


def add_arguments(parser) -> None:
    parser.add_argument("--runs", type=int, default=2, help="pairs of sweeps timed, in turns (default: 2)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="replace the trials' overrides (default: 3 epochs of 16,000 synthetic 1x32x32 images at batch 32)")


def run(args) -> int:
    from cnnlab.bench.sweep import bench_sweep
    from cnnlab.cli.table import print_table
    from cnnlab.errors import CnnlabError

    if args.runs < 1:
        raise CnnlabError(f"--runs must be at least 1, got {args.runs}")
    result = bench_sweep(runs=args.runs, overrides=args.overrides or None)
    rows = [["--workers 1", f"{result['workers_1_s']:.1f}", "1.00x"],
            ["--workers 2", f"{result['workers_2_s']:.1f}", f"{result['speedup']:.2f}x"]]
    print_table(["cnnlab sweep quick_test --grid " + result["grid"], "wall s (median)", "speed-up"], rows,
                title=f"whole processes, {result['runs']} pairs in turns; trials: {' '.join(result['overrides'])}")
    print(f"2 workers are {result['speedup']:.2f}x faster than 1 (median of the pairwise ratios; issue 11's bound: "
          ">= 1.6x)")
    return 0
