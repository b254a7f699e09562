"""``cnnlab train RECIPE [key=value ...]``: train one run and write its run directory."""

from __future__ import annotations

import json
import sys

from cnnlab.errors import CnnlabError

HELP = "train a model from a recipe"
ORDER = 10
DESCRIPTION = ("Train from a YAML recipe: a file, or the name of a packaged recipe ('cnnlab recipes'). "
               "key=value words override recipe keys (values are YAML); options may come anywhere among them.")
EPILOG = """\
examples: cnnlab train recipes/fashion_mnist.yaml optim.lr=0.05 train.epochs=3
          cnnlab train fashion_mnist --quiet train.epochs=3
          cnnlab train fashion_mnist --json | python -m json.tool
          cnnlab train --resume runs/fashion_mnist-20261122-153000
          torchrun --nproc-per-node=2 -m cnnlab train fashion_mnist      data-parallel, gloo on CPU"""


def add_arguments(parser) -> None:
    parser.add_argument("recipe", nargs="?",
                        help="recipe YAML file (recipes/fashion_mnist.yaml) or packaged recipe name (fashion_mnist)"
                        ).complete = "file"
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override a recipe key")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue a killed run from its last checkpoint").complete = "directory"
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--quiet", action="store_true", help="print only the summary path")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as JSON at the end and nothing else on stdout (progress: stderr)")


def run(args) -> int:
    from cnnlab.config import dump_yaml

    if args.resume:
        if args.recipe or args.overrides:
            raise CnnlabError("--resume takes the run's own config.yaml; drop the recipe and overrides")
        from cnnlab.run import RunDir

        config = RunDir.open(args.resume).config()
    elif args.recipe:
        from cnnlab.cli._recipe import load_recipe_arg

        config = load_recipe_arg(args.recipe, args.overrides)
    else:
        raise CnnlabError("give a recipe (e.g. cnnlab train recipes/fashion_mnist.yaml) or --resume RUN_DIR")
    from cnnlab.engine.fit import fit
    from cnnlab.engine.progress import Progress
    from cnnlab.engine.session import setup
    from cnnlab.engine.trackers import log_artifacts
    from cnnlab.report import write_report

    if args.print_config:
        setup(config)  # every check a run makes before its first epoch: data, model, optimizer, schedule
        print(dump_yaml(config), end="")
        return 0
    from cnnlab.engine.distributed import world_from_env

    main_rank = world_from_env().is_main  # under torchrun, rank 0 alone prints and writes the report
    # --json keeps stdout for the JSON alone: the epoch lines (and the bar, on a terminal) go to stderr.
    progress = Progress(stream=sys.stderr if args.json else sys.stdout, quiet=args.quiet or not main_rank)
    summary = fit(config, progress=progress, resume=args.resume)
    if not main_rank:
        return 0 if summary.status in ("completed", "early_stopped") else 1
    progress.log(f"report: {write_report(summary.run_dir)}")
    log_artifacts(summary.run_dir, warn=progress.log)  # report.html and its figures to the run's MLflow run, if any
    if args.json:
        print(json.dumps({k: v for k, v in summary.to_dict().items() if k != "environment"}, indent=2))
    elif args.quiet:
        print(f"{summary.run_dir}/summary.json")
    return 0 if summary.status in ("completed", "early_stopped") else 1
