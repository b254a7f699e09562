"""``cnnlab compare RUN_OR_SWEEP...``: the runs side by side, repeats over seeds grouped."""

from __future__ import annotations

HELP = "compare runs or sweeps: one table, overlaid curves, the best recipe"
ORDER = 27
DESCRIPTION = ("Compare any set of runs: run folders, sweep folders (their trials) or folders of runs. What the "
               "runs vary is found by diffing their configs; runs that differ only in seed are grouped as "
               "mean ± sample std. One row per group: the varied values, best validation accuracy and its epoch, "
               "final training accuracy, test accuracy (evaluated once), training time, inference throughput "
               "(from cnnlab eval), parameters and status (a run within 2 points of chance, or 3 binomial std on a small validation split, is flagged), sorted by "
               "the metric with failed and diverged runs last. Writes table.md, table.csv (one row per run), "
               "best_recipe.yaml (the best run's config, ready for cnnlab train) and a self-contained "
               "compare.html with the overlaid curves and, for a sweep, Optuna's parameter importances.")
EPILOG = """\
examples: cnnlab compare runs/sweep-lr
          cnnlab compare runs/resnet20-20261122-153000 runs/vgg11_bn-20261122-160100 --out compare-models
          cnnlab compare runs --metric test_acc"""


def add_arguments(parser) -> None:
    parser.add_argument("paths", nargs="+", metavar="RUN_OR_SWEEP",
                        help="run folders, sweep folders, or folders that hold run folders").complete = "directory"
    parser.add_argument("--out", default=None,
                        help="folder for the files (default: compare/ in the sweep when one sweep is given, "
                             "else ./compare-<time>)").complete = "directory"
    parser.add_argument("--metric", default=None,
                        help="sort by val_acc (best validation accuracy), test_acc or train_time "
                             "(default: the sweep's metric, else val_acc)")


def run(args) -> int:
    from cnnlab.analysis.compare import METRICS, compare
    from cnnlab.cli.table import print_table
    from cnnlab.report.compare import default_out, notes, table, write_comparison

    comparison = compare(args.paths, metric=args.metric)
    varied = ", ".join(comparison.varied) or "nothing but the seed"
    print_table(*table(comparison), title=f"{len(comparison.runs)} runs in {len(comparison.groups)} groups, "
                f"by {comparison.metric} (best first); varied: {varied}")
    for note in notes(comparison):
        print(f"  {note}")
    if comparison.best is not None:
        value = getattr(comparison.best, METRICS[comparison.metric][0])
        print(f"\nbest: {comparison.best.path} ({comparison.metric} {value:.4g}); its config is best_recipe.yaml")
    for found in comparison.importances:
        ranked = ", ".join(f"{p} {v:.3f}" for p, v in (found.values or {}).items())
        print(f"importances, study {found.study}: {ranked or found.note}")
    print()
    for path in write_comparison(comparison, args.out or default_out(comparison)):
        print(f"wrote {path}")
    return 0
