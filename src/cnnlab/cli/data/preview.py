"""``cnnlab data preview RECIPE [key=value ...]``: a PNG grid of augmented training images."""

from __future__ import annotations

from pathlib import Path

from cnnlab.cli.data._recipe import add_recipe_arguments, load_data_config
from cnnlab.errors import CnnlabError

HELP = "write a PNG grid of augmented training images with their labels"
ORDER = 20
DESCRIPTION = ("Draw training images at random, augment them as a training batch is augmented (the recipe's "
               "data.augment, seeded), and write them as a grid with their class names: what the model will see, "
               "before normalization.")
EPILOG = """\
examples: cnnlab data preview fashion_mnist
          cnnlab data preview fashion_mnist --count 64 --output look.png
          cnnlab data preview fashion_mnist 'data.augment=[{name: rotate, degrees: 30}]'"""


def add_arguments(parser) -> None:
    add_recipe_arguments(parser)
    parser.add_argument("--count", type=int, default=32, help="images in the grid (default 32)")
    parser.add_argument("--columns", type=int, default=8, help="images per row (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="which images and which augmentations (default 0)")
    parser.add_argument("--output", "-o", default="preview.png", help="the PNG to write (default preview.png)")


def run(args) -> int:
    if args.count < 1 or args.columns < 1:
        raise CnnlabError(f"--count and --columns must be at least 1, got {args.count} and {args.columns}")
    if args.seed < 0:
        raise CnnlabError(f"--seed must be >= 0, got {args.seed}")
    from cnnlab.atomic import atomic_write_bytes
    from cnnlab.data.overview import augmented_sample
    from cnnlab.data.prepare import check_data
    from cnnlab.report.plots import gallery_png

    data = load_data_config(args.recipe, args.overrides)
    splits = check_data(data)  # the augmentation names and options too, before anything is drawn
    images, labels = augmented_sample(splits, data.augment, args.count, args.seed)
    ops = ", ".join(spec["name"] for spec in data.augment) or "no augmentation"
    C, H, W = images.shape[1:]
    title = f"{data.name}: {len(images)} training images, {C}x{H}x{W}, {ops} (seed {args.seed})"
    path = Path(args.output)
    names = [splits.classes[int(label)] for label in labels]
    atomic_write_bytes(path, gallery_png(images, names, columns=args.columns, title=title, cell=(1.5, 1.7), dpi=100))
    print(f"wrote {path}: {len(images)} augmented training images of {data.name} ({ops}), "
          f"{min(args.columns, len(images))} per row")
    return 0
