"""``cnnlab bench NAME``: the speed and memory benchmarks (see docs/BENCHMARKS.md)."""

from __future__ import annotations

ORDER = 60


def register(subparsers) -> None:
    import cnnlab.bench as bench_package
    from cnnlab.cli.main import discover

    parser = subparsers.add_parser("bench", help="run a benchmark and print figures with ratios to a baseline")
    benches = parser.add_subparsers(dest="bench", metavar="BENCH")
    for module in discover(bench_package):
        module.register(benches)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
