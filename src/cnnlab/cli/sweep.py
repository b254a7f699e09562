"""``cnnlab sweep RECIPE``: a grid or an Optuna TPE search of a recipe's keys, every trial a run folder."""

from __future__ import annotations

HELP = "sweep a recipe's keys: grid or Optuna TPE, seeds, pruning, many workers"
ORDER = 26
DESCRIPTION = ("Run a grid (--grid KEY=V1,V2,...: every combination, each run once) or Optuna's TPE search "
               "(--search KEY=loguniform:LOW:HIGH | uniform:LOW:HIGH | int:LOW:HIGH | choice:A,B --trials N) "
               "over a recipe's keys, each point repeated with --seeds N. Every trial is an ordinary run folder "
               "inside SWEEP_DIR; the study lives in an Optuna RDB storage, SQLite in SWEEP_DIR by default or "
               "--storage postgresql://... shared by many machines (each runs 'cnnlab sweep --resume SWEEP_DIR "
               "--storage URL'). --workers N runs N trial processes here, the cores split between them. "
               "Diverged, at-chance, pruned and failed trials are recorded as such. A sweep file "
               "(recipes/ablations/*.yaml) holds the same as the options.")
EPILOG = """\
examples: cnnlab sweep fashion_mnist --grid optim.lr=1.0,0.1,0.01 --grid model.options.batchnorm=true,false
          cnnlab sweep fashion_mnist --search optim.lr=loguniform:1e-4:1 --search optim.name=choice:sgd,adam --trials 20 --prune
          cnnlab sweep recipes/ablations/lr_sweep.yaml --workers 2
          cnnlab sweep --resume sweeps/lr_sweep-20261124-220000"""


def add_arguments(parser) -> None:
    parser.add_argument("recipe", nargs="?", help="a recipe (name or path) or a sweep file").complete = "file"
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="applied to every trial")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2", help="a grid axis (repeatable)")
    parser.add_argument("--search", action="append", default=[], metavar="KEY=DIST",
                        help="a searched key: loguniform:LOW:HIGH, uniform:LOW:HIGH, int:LOW:HIGH, choice:A,B")
    parser.add_argument("--trials", type=int, default=None, help="points TPE samples (with --search)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per point (default: 1)")
    parser.add_argument("--prune", action="store_true", help="Optuna's MedianPruner on the validation metric")
    parser.add_argument("--workers", type=int, default=1, help="trial processes on this machine (default: 1)")
    parser.add_argument("--storage", default=None,
                        help="Optuna RDB URL (default: sqlite:///SWEEP_DIR/study.db)")
    parser.add_argument("--out", default="sweeps", help="where the sweep folder goes (default: sweeps)")
    parser.add_argument("--resume", default=None, metavar="SWEEP_DIR",
                        help="continue a sweep (or join it from another machine)").complete = "directory"
    parser.add_argument("--worker", default=None, metavar="SWEEP_DIR", help=argparse_suppress())
    parser.add_argument("--threads", type=int, default=None, help=argparse_suppress())
    parser.add_argument("--quiet", action="store_true", help="no epoch lines from the trials")


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS


def run(args) -> int:
    from pathlib import Path

    from cnnlab.errors import CnnlabError
    from cnnlab.sweep import runner
    from cnnlab.sweep.spec import spec_from_args

    if args.worker:  # one worker process of --workers N: its share of the cores, no output of its own
        runner.work(args.worker, storage=args.storage, threads=args.threads, quiet=True)
        return 0
    if args.workers < 1:
        raise CnnlabError(f"--workers must be at least 1, got {args.workers}")
    if args.resume:
        if args.recipe or args.grid or args.search:
            raise CnnlabError("--resume takes the sweep's own spec; drop the recipe, --grid and --search")
        sweep_dir = Path(args.resume)
        spec, url, _ = runner.read_sweep(sweep_dir, args.storage)
    else:
        if not args.recipe:
            raise CnnlabError("give a recipe or sweep file (e.g. cnnlab sweep fashion_mnist --grid optim.lr=0.1,0.01) "
                              "or --resume SWEEP_DIR")
        spec = spec_from_args(args.recipe, args.overrides, args.grid, args.search, trials=args.trials,
                              seeds=args.seeds, prune=args.prune)
        # named after what was asked for: a sweep file's own name, not the recipe it points at
        name = Path(args.recipe).stem if args.recipe.endswith((".yaml", ".yml")) else args.recipe.split("/")[-1]
        sweep_dir = runner.start_sweep(spec, args.out, storage=args.storage, name=name)
        url = args.storage
    print(f"sweep {sweep_dir}: {describe(spec)}")
    if args.workers == 1:
        runner.work(sweep_dir, storage=url, quiet=args.quiet)
    else:
        codes = runner.run_workers(sweep_dir, args.workers, storage=url)
        if any(codes):
            raise CnnlabError(f"{sum(1 for c in codes if c)} of {len(codes)} workers failed (exit codes {codes}); "
                              f"completed trials are kept: cnnlab sweep --resume {sweep_dir}")
    print_trials(sweep_dir, url)
    return 0


def describe(spec) -> str:
    if spec.mode == "grid":
        axes = " x ".join(f"{k} ({len(v)})" for k, v in spec.grid.items()) or "one point"
        points = len(spec.grid_points())
        return f"grid {axes}, {spec.seeds} seed{'s' if spec.seeds > 1 else ''}: {points} trials"
    return f"TPE over {', '.join(spec.search)}: {spec.trials} trials x {spec.seeds} seed(s)"


def print_trials(sweep_dir, url) -> None:
    """One line per trial: number, state, value, params."""
    from cnnlab.cli.table import print_table
    from cnnlab.sweep import runner, study as studies

    spec, url, name = runner.read_sweep(sweep_dir, url)
    study = studies.load_study(studies.open_storage(url), name, mode=spec.mode, seed=0, prune=spec.prune)
    rows = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        state = t.user_attrs.get("state") or t.state.name.lower()
        value = "-" if t.value is None else f"{t.value:.4f}"
        params = ", ".join(f"{k}={v}" for k, v in t.params.items())
        rows.append([str(t.number), state, value, params, t.user_attrs.get("reason", "")[:60]])
    print_table(["trial", "state", spec.metric, "params", "reason"], rows, title="")
    print(f"\n{sweep_dir}: compare the trials with 'cnnlab compare {sweep_dir}'")
