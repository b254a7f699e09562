"""``cnnlab bench predict RUN_DIR IMAGE``: cnnlab predict's whole-process time against importing torch."""

from __future__ import annotations

HELP = "cnnlab predict from command to answer, against python -c 'import torch'"
ORDER = 40
EPILOG = "example: cnnlab bench predict runs/fashion_mnist-20261122-153000 shirt.png"


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", help="a run directory written by cnnlab train").complete = "directory"
    parser.add_argument("image", help="an image file").complete = "file"
    parser.add_argument("--runs", type=int, default=5, help="pairs of processes counted (default: 5)")


def run(args) -> int:
    from cnnlab.bench.predict import bench_predict
    from cnnlab.cli.table import print_table

    result = bench_predict(args.run_dir, args.image, runs=args.runs)
    rows = [["python -c 'import torch'", f"{result['import_torch_s']:.2f}", "1.00x"],
            ["cnnlab predict RUN_DIR IMAGE", f"{result['predict_s']:.2f}",
             f"{result['predict_s'] / result['import_torch_s']:.2f}x"]]
    print_table(["command", "wall s (median)", "ratio"], rows,
                title=f"whole processes, {result['runs']} pairs in turns after a warm-up pair")
    print(f"predict takes {result['extra_s']:+.2f} s more than importing torch (median of the pairwise differences; "
          "issue 10's bound: at most 1 s)")
    return 0
