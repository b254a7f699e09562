"""``cnnlab bench finetune``: does pretraining help with 500 images? (CS 6476 part 8, on real data)

1. pretrain ``recipes/fmnist_pretrain_0to4.yaml`` on Fashion-MNIST classes 0-4;
2. fine-tune on 500 images of classes 5-9 with the features frozen and a new head
   (``recipes/fmnist_finetune_5to9.yaml``);
3. fine-tune the same way with nothing frozen;
4. train the same net from scratch on the same 500 images, same recipe.
Prints validation and test accuracy of 2, 3 and 4 (test evaluated once per run, best-on-val
checkpoint). All four runs are ordinary run directories under ``--output``.
"""

from __future__ import annotations

from pathlib import Path

from cnnlab.cli.table import print_table
from cnnlab.config import load_recipe

RECIPES = Path(__file__).resolve().parents[3] / "recipes"


def register(subparsers) -> None:
    parser = subparsers.add_parser("finetune", help="fine-tuning vs training from scratch on 500 Fashion-MNIST images")
    parser.add_argument("--recipes", default=str(RECIPES), help="folder holding the two fmnist_* recipes")
    parser.add_argument("--output", default="runs/bench-finetune", help="where the four run folders go")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def run(args) -> int:
    from cnnlab.engine.fit import fit
    from cnnlab.engine.progress import Progress

    folder, quiet = Path(args.recipes), Progress(quiet=True)
    common = [f"output_dir={args.output}", f"seed={args.seed}"]
    pretrain = fit(load_recipe(folder / "fmnist_pretrain_0to4.yaml", common), progress=quiet)
    print(f"pretrained on classes 0-4: val {pretrain['best']['val_acc']:.2%} ({pretrain['run_dir']})")
    tuned_recipe = folder / "fmnist_finetune_5to9.yaml"
    tuned = fit(load_recipe(tuned_recipe, common + [f"finetune.from={pretrain['run_dir']}"]), progress=quiet)
    full = fit(load_recipe(tuned_recipe, common + [f"finetune.from={pretrain['run_dir']}", "finetune.freeze=[]",
                                                   "name=fmnist_finetune_all_5to9"]), progress=quiet)
    scratch = fit(load_recipe(tuned_recipe, common + ["finetune.from=null", "finetune.freeze=[]",
                                                      "name=fmnist_scratch_5to9"]), progress=quiet)
    rows = []
    for label, s in (("fine-tuned, features frozen", tuned), ("fine-tuned, all layers", full),
                     ("from scratch", scratch)):
        rows.append([label, f"{s['model']['trainable_parameters']:,}", f"{s['best']['val_acc']:.2%}", f"{s['test']['acc']:.2%}",
                     f"{s['time']['train_wall_s']:.1f}", s["run_dir"]])
    print(f"classes 5-9 from {tuned['dataset']['train']} training images "
          f"(val {tuned['dataset']['val']}, test {tuned['dataset']['test']} images):")
    print_table(["start", "trainable params", "best val acc", "test acc", "train s", "run"], rows)
    return 0
