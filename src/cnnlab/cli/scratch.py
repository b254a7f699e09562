"""``cnnlab scratch gradcheck | bench | train``: the NumPy library of ENPM 703 assignment 2.

  cnnlab scratch gradcheck              every layer and both models against numerical gradients
  cnnlab scratch bench                  naive vs fast conv and pooling, with torch as yardstick
  cnnlab scratch train --model fc ...   train on Fashion-MNIST or digits into a run directory
"""

from __future__ import annotations

import argparse
import textwrap
import json

from cnnlab.errors import CnnlabError

ORDER = 40


def register(subparsers) -> None:
    parser = subparsers.add_parser("scratch", help="the NumPy neural-net library: gradcheck, bench, train",
                                   description=textwrap.dedent(__doc__.split("\n", 1)[1]).strip("\n"),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="scratch_command", metavar="COMMAND")
    _register_gradcheck(commands)
    _register_bench(commands)
    _register_train(commands)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


# --- gradcheck ---------------------------------------------------------------------------------


def _register_gradcheck(commands) -> None:
    p = commands.add_parser("gradcheck", help="check every layer's and model's gradients numerically (float64)",
                            description="Compare every backward with centred-difference gradients and print the "
                                        "relative errors; exit 1 if any exceeds the threshold.")
    p.add_argument("--seed", type=int, default=0, help="random inputs and weights (default 0)")
    p.add_argument("--only", default="layers,conv,models", help="comma-separated groups: layers, conv, models")
    p.set_defaults(func=run_gradcheck)


def run_gradcheck(args) -> int:
    from cnnlab.scratch import gradcheck_suite as suite

    groups = tuple(g.strip() for g in args.only.split(",") if g.strip())
    for group in groups:
        if group not in suite.GROUPS:
            from cnnlab.errors import unknown_name

            raise unknown_name("gradcheck group", group, suite.GROUPS)
    rows = suite.run_gradient_checks(args.seed, groups)
    print(suite.format_table(rows))
    failed = [r for r in rows if not r.rel_error <= suite.THRESHOLD]
    worst = max(rows, key=lambda r: r.rel_error)
    print(f"\n{len(rows) - len(failed)}/{len(rows)} gradients within {suite.THRESHOLD:.0e} "
          f"(largest: {worst.rel_error:.1e}, {worst.layer} {worst.gradient}); "
          f"numerical reference in {suite.REFERENCE.__name__}, h = {suite.H:.1e}")
    return 1 if failed else 0


# --- bench -------------------------------------------------------------------------------------


def _register_bench(commands) -> None:
    p = commands.add_parser("bench", help="time naive vs fast conv and max pooling, and torch's CPU kernels",
                            description="Best-of-N timings at the cs231n shapes; ratios measured in one process.")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="default float64, as cs231n")
    p.add_argument("--repeats", type=int, default=20, help="timed calls of the fast and torch ops (default 20)")
    p.add_argument("--naive-repeats", type=int, default=2, help="timed calls of the naive ops (default 2)")
    p.add_argument("--threads", type=int, default=1,
                   help="NumPy's BLAS and torch get this many threads each (default 1; 0: their defaults)")
    p.add_argument("--quick", action="store_true", help="tiny shapes: checks the command, not the speed")
    p.set_defaults(func=run_bench)


def run_bench(args) -> int:
    from cnnlab.scratch.bench import describe_setup, format_table, run_bench as bench

    if args.repeats < 1 or args.naive_repeats < 1 or args.threads < 0:
        raise CnnlabError("--repeats and --naive-repeats must be at least 1, --threads at least 0")
    rows = bench(args.dtype, repeats=args.repeats, naive_repeats=args.naive_repeats, quick=args.quick,
                 threads=args.threads)
    print(describe_setup(args.dtype, args.quick, args.threads))
    print(format_table(rows))
    return 0


# --- train -------------------------------------------------------------------------------------


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


def _register_train(commands) -> None:
    from cnnlab.scratch.train import ScratchTrainConfig as D

    p = commands.add_parser("train", help="train FullyConnectedNet or ThreeLayerConvNet into a run directory",
                            description="Train a NumPy model; writes runs/scratch-<model>-<time>/ with the same "
                                        "files as the torch runs.",
                            epilog="example: cnnlab scratch train --model fc --hidden 256,128 --norm batchnorm "
                                   "--dropout 0.25 --update adam --epochs 10")
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
    p.add_argument("--output-dir", default=D.output_dir, help="where run folders go (default runs)")
    p.add_argument("--name", help="run folder prefix (default scratch-<model>)")
    p.add_argument("--quiet", action="store_true", help="print only the summary path")
    p.add_argument("--json", action="store_true", help="print the summary as JSON at the end")
    p.set_defaults(func=run_train)


def run_train(args) -> int:
    from cnnlab.scratch.train import ScratchTrainConfig, train_scratch

    hidden = args.hidden or ((256, 128) if args.model == "fc" else (256,))
    config = ScratchTrainConfig(
        model=args.model, dataset=args.dataset, hidden=hidden, norm=None if args.norm == "none" else args.norm,
        dropout=args.dropout, filters=args.filters, filter_size=args.filter_size, update=args.update, lr=args.lr,
        lr_decay=args.lr_decay, epochs=args.epochs, batch_size=args.batch_size, reg=args.reg,
        weight_scale=args.weight_scale, val_size=args.val_size, train_limit=args.train_limit, seed=args.seed,
        dtype=args.dtype, threads=args.threads, output_dir=args.output_dir, name=args.name)
    summary = train_scratch(config, log=(lambda _: None) if args.quiet else print)
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k not in ("config", "environment")}, indent=2))
    elif args.quiet:
        print(f"{summary['run_dir']}/summary.json")
    return 0 if summary["status"] == "completed" else 1
