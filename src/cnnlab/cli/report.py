"""``cnnlab report RUN_DIR``: redraw the plots and report.html from a run directory."""

from __future__ import annotations

HELP = "rebuild curves, confusion matrix and report.html of a run"
ORDER = 20
EPILOG = "example: cnnlab report runs/fashion_mnist-20261122-153000"


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", help="a run directory written by cnnlab train").complete = "directory"


def run(args) -> int:
    from cnnlab.report import write_report
    from cnnlab.run import RunDir

    path = RunDir.open(args.run_dir).path
    print(write_report(path))
    return 0
