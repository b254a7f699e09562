"""``cnnlab train RECIPE [key=value ...]``: train one run and write its run directory."""

from __future__ import annotations

import json

from cnnlab.errors import CnnlabError

ORDER = 10


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model from a recipe",
        description="Train from a YAML recipe; key=value words override recipe keys (values are YAML).",
        epilog="examples: cnnlab train recipes/fashion_mnist.yaml optim.lr=0.05 train.epochs=3\n"
               "          cnnlab train --resume runs/fashion_mnist-20261122-153000",
    )
    parser.add_argument("recipe", nargs="?", help="recipe YAML file, e.g. recipes/fashion_mnist.yaml")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override a recipe key")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run from its last checkpoint")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    parser.add_argument("--quiet", action="store_true", help="print only the summary path")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON at the end")
    parser.set_defaults(func=run)


def run(args) -> int:
    from cnnlab.config import dump_yaml, load_recipe

    if args.resume:
        if args.recipe or args.overrides:
            raise CnnlabError("--resume takes the run's own config.yaml; drop the recipe and overrides")
        from cnnlab.run.restore import load_run_config

        config = load_run_config(args.resume)
    elif args.recipe:
        config = load_recipe(args.recipe, args.overrides)
    else:
        raise CnnlabError("give a recipe (e.g. cnnlab train recipes/fashion_mnist.yaml) or --resume RUN_DIR")
    if args.print_config:
        print(dump_yaml(config), end="")
        return 0
    from cnnlab.engine.fit import fit
    from cnnlab.engine.progress import Progress

    summary = fit(config, progress=Progress(quiet=args.quiet), resume=args.resume)
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k not in ("config", "environment")}, indent=2))
    elif args.quiet:
        print(f"{summary['run_dir']}/summary.json")
    return 0 if summary["status"] in ("completed", "early_stopped") else 1
