"""``cnnlab scratch bench``: naive vs fast NumPy conv and pooling, with torch as yardstick."""

from __future__ import annotations

from cnnlab.errors import CnnlabError

HELP = "time naive vs fast conv and max pooling, and torch's CPU kernels"
ORDER = 20
DESCRIPTION = "Best-of-N timings at the cs231n shapes; ratios measured in one process."


def add_arguments(parser) -> None:
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="default float64, as cs231n")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls of the fast and torch ops (default 20)")
    parser.add_argument("--naive-repeats", type=int, default=2, help="timed calls of the naive ops (default 2)")
    parser.add_argument("--threads", type=int, default=1,
                        help="NumPy's BLAS and torch get this many threads each (default 1; 0: their defaults)")
    parser.add_argument("--quick", action="store_true", help="tiny shapes: checks the command, not the speed")


def run(args) -> int:
    from cnnlab.scratch.bench import describe_setup, format_table, run_bench

    if args.repeats < 1 or args.naive_repeats < 1 or args.threads < 0:
        raise CnnlabError("--repeats and --naive-repeats must be at least 1, --threads at least 0")
    rows = run_bench(args.dtype, repeats=args.repeats, naive_repeats=args.naive_repeats, quick=args.quick,
                     threads=args.threads)
    print(describe_setup(args.dtype, args.quick, args.threads))
    print(format_table(rows))
    return 0
