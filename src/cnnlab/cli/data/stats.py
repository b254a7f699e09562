"""``cnnlab data stats RECIPE [key=value ...]``: split sizes, class balance and the normalization."""

from __future__ import annotations

from cnnlab.cli.data._recipe import add_recipe_arguments, load_data_config

HELP = "split sizes, class balance and the normalization fitted on train"
ORDER = 10
DESCRIPTION = ("Load the recipe's data as training would (image folders decoded or read from the cache, "
               "image_size and channels applied, val held out), then print the split sizes, the images of "
               "each class in each split, and the normalization fitted on the train split only.")
EPILOG = """\
examples: cnnlab data stats fashion_mnist
          cnnlab data stats fashion_mnist data.normalize=zca data.train_limit=5000
          cnnlab data stats my_recipe.yaml data.root=~/pictures/scenes data.image_size=[64,64]"""


def add_arguments(parser) -> None:
    add_recipe_arguments(parser)


def run(args) -> int:
    from cnnlab.cli.table import print_table
    from cnnlab.data.overview import PARTS, class_balance, imbalance, split_sizes
    from cnnlab.data.prepare import prepare_splits

    data = load_data_config(args.recipe, args.overrides)
    splits, normalization = prepare_splits(data)
    C, H, W = splits.train_images.shape[1:]
    print(f"{data.name} ({splits.source}): {C}x{H}x{W}, {splits.num_classes} classes")
    for key, value in sorted(splits.notes.items()):
        print(f"  {key}: {value}")
    sizes = split_sizes(splits)
    print_table(["split", "images"], [[part, f"{sizes[part]:,}"] for part in PARTS])
    rows = class_balance(splits)
    print_table(["class", *PARTS], [[r.name, *(f"{r.counts[p]:,}" for p in PARTS)] for r in rows],
                title="\nimages per class")
    print(f"largest / smallest class in train: {imbalance(rows):.2f}")
    print(f"\nnormalization, fitted on the train split only: {normalization.describe()}")
    headers, table = normalization.rows()
    if table:
        print_table(headers, table)
    return 0
