"""``cnnlab bench finetune``: fine-tuning vs training from scratch on 500 Fashion-MNIST images."""

from __future__ import annotations

from pathlib import Path

from cnnlab.cli.table import print_table

HELP = "fine-tuning vs training from scratch on 500 Fashion-MNIST images"
ORDER = 30
DESCRIPTION = ("Pretrain on classes 0-4, then train classes 5-9 from 500 images three ways: fine-tuned with the "
               "features frozen, fine-tuned with all layers, from scratch (CS 6476 part 8; four real runs).")


def add_arguments(parser) -> None:
    parser.add_argument("--recipes", metavar="FOLDER",
                        help="folder holding fmnist_pretrain_0to4.yaml and fmnist_finetune_5to9.yaml "
                             "(default: the packaged recipes)").complete = "directory"
    parser.add_argument("--output", default="runs/bench-finetune", help="where the four run folders go")
    parser.add_argument("--seed", type=int, default=0)


def run(args) -> int:
    from cnnlab.bench.finetune import compare_starts, pretrain
    from cnnlab.config.recipes import RECIPES_DIR

    recipes = Path(args.recipes) if args.recipes else RECIPES_DIR
    pretrained = pretrain(args.output, args.seed, recipes)
    print(f"pretrained on classes 0-4: val {pretrained.best.val_acc:.2%} ({pretrained.run_dir})", flush=True)
    runs = compare_starts(pretrained.run_dir, args.output, args.seed, recipes)
    rows = [[label, f"{s.model['trainable_parameters']:,}", f"{s.best.val_acc:.2%}", f"{s.test.acc:.2%}",
             f"{s.time['train_wall_s']:.1f}", s.run_dir] for label, s in runs]
    data = runs[0][1].dataset
    print(f"classes 5-9 from {data['train']} training images (val {data['val']}, test {data['test']} images):")
    print_table(["start", "trainable params", "best val acc", "test acc", "train s", "run"], rows)
    return 0
