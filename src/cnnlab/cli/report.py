"""``cnnlab report RUN_DIR``: redraw the plots and report.html from a run directory."""

from __future__ import annotations

ORDER = 20


def register(subparsers) -> None:
    parser = subparsers.add_parser("report", help="rebuild curves, confusion matrix and report.html of a run",
                                   epilog="example: cnnlab report runs/fashion_mnist-20261122-153000")
    parser.add_argument("run_dir", help="a run directory written by cnnlab train")
    parser.set_defaults(func=run)


def run(args) -> int:
    from cnnlab.report import write_report
    from cnnlab.run import RunDir

    path = RunDir.open(args.run_dir).path
    print(write_report(path))
    return 0
