"""``cnnlab scratch train``: train FullyConnectedNet or ThreeLayerConvNet into a run directory."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "train FullyConnectedNet or ThreeLayerConvNet into a run directory"
ORDER = 30
DESCRIPTION = "Train a NumPy model; writes runs/scratch-<model>-<time>/ with the same files as the torch runs."
EPILOG = ("example: cnnlab scratch train --model fc --hidden 256,128 --norm batchnorm --dropout 0.25 --update adam "
          "--epochs 10")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated widths like 256,128, got '{text}'") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive widths like 256,128, got '{text}'")
    return values


def _weight_scale(text: str) -> float | str:
    if text == "he":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'he', got '{text}'") from None


def add_arguments(p) -> None:
    # The defaults live in the config dataclass (only when this command runs).
    from cnnlab.scratch.config import ScratchTrainConfig as D

    p.add_argument("--model", choices=("fc", "cnn"), default=D.model)
    p.add_argument("--dataset", default=D.dataset, help="fashion_mnist (default), digits, or any registered dataset")
    p.add_argument("--hidden", type=_int_list, help="fc: hidden widths (default 256,128); cnn: one width (default 256)")
    p.add_argument("--norm", choices=("none", "batchnorm", "layernorm"), default="none")
    p.add_argument("--dropout", type=float, default=D.dropout, help="probability of dropping a hidden unit")
    p.add_argument("--filters", type=int, default=D.filters, help="cnn: conv filters (default 32)")
    p.add_argument("--filter-size", type=int, default=D.filter_size, help="cnn: odd filter size (default 5)")
    p.add_argument("--update", default=D.update, help="sgd, sgd_momentum, rmsprop or adam (default)")
    p.add_argument("--lr", type=float, default=D.lr, help="learning rate (default 1e-3)")
    p.add_argument("--lr-decay", type=float, default=D.lr_decay, help="lr multiplier after each epoch (default 1)")
    p.add_argument("--epochs", type=int, default=D.epochs)
    p.add_argument("--batch-size", type=int, default=D.batch_size)
    p.add_argument("--reg", type=float, default=D.reg, help="L2 strength (default 0)")
    p.add_argument("--weight-scale", type=_weight_scale, default=D.weight_scale, help="init std, or 'he' (default)")
    p.add_argument("--val-size", type=float, default=D.val_size, help="held out of train: count or fraction")
    p.add_argument("--train-limit", type=int, help="train on this many images only")
    p.add_argument("--seed", type=int, default=D.seed)
    p.add_argument("--dtype", choices=("float32", "float64"), default=D.dtype)
    p.add_argument("--threads", type=int, default=D.threads,
                   help="NumPy BLAS threads (default 1: a second thread stalls on a busy core; 0: NumPy's choice)")
    p.add_argument("--output-dir", default=D.output_dir,
                   help="where run folders go (default runs)").complete = "directory"
    p.add_argument("--name", help="run folder prefix (default scratch-<model>)")
    p.add_argument("--quiet", action="store_true", help="print only the summary path")
    p.add_argument("--json", action="store_true",
                   help="print the summary as JSON at the end, and nothing else on stdout (progress goes to stderr)")


def _log(args):
    """Where progress lines go: nowhere (--quiet), stderr (--json keeps stdout for the JSON), stdout."""
    if args.quiet:
        return lambda _: None
    stream = sys.stderr if args.json else sys.stdout
    return lambda line: print(line, file=stream, flush=True)


def run(args) -> int:
    from cnnlab.report import write_report
    from cnnlab.scratch.config import ScratchTrainConfig
    from cnnlab.scratch.train import train_scratch

    hidden = args.hidden or ((256, 128) if args.model == "fc" else (256,))
    config = ScratchTrainConfig(
        model=args.model, dataset=args.dataset, hidden=hidden, norm=None if args.norm == "none" else args.norm,
        dropout=args.dropout, filters=args.filters, filter_size=args.filter_size, update=args.update, lr=args.lr,
        lr_decay=args.lr_decay, epochs=args.epochs, batch_size=args.batch_size, reg=args.reg,
        weight_scale=args.weight_scale, val_size=args.val_size, train_limit=args.train_limit, seed=args.seed,
        dtype=args.dtype, threads=args.threads, output_dir=args.output_dir, name=args.name)
    log = _log(args)
    summary = train_scratch(config, log=log)
    log(f"report: {write_report(summary.run_dir)}")
    if args.json:
        print(json.dumps({k: v for k, v in summary.to_dict().items() if k != "environment"}, indent=2))
    elif args.quiet:
        print(f"{summary.run_dir}/summary.json")
    return 0 if summary.status == "completed" else 1
