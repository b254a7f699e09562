"""``cnnlab data export NAME DIR --format imagefolder``: a registered dataset as PNG class folders."""

from __future__ import annotations

HELP = "write a registered dataset as PNG class folders (train/ and test/)"
ORDER = 30
DESCRIPTION = ("Write every image of a registered dataset as a PNG file in DIR/train/CLASS/ and DIR/test/CLASS/ "
               "(class folders numbered in label order, files in the dataset's order), on all cores. Training on "
               "the folder (data.name: imagefolder, data.root: DIR) reads back exactly the same pixels and labels.")
EPILOG = """\
examples: cnnlab data export fashion_mnist fmnist-png --format imagefolder
          cnnlab data export digits digits-png --format imagefolder
          cnnlab data export synthetic synth-png --format imagefolder 'shape=[3,32,32]' train_size=500"""

FORMATS = ("imagefolder",)


def add_arguments(parser) -> None:
    parser.add_argument("name", help="a registered dataset (fashion_mnist, digits, cifar10, synthetic)")
    parser.add_argument("directory", metavar="DIR", help="where to write; it must not exist or be empty"
                        ).complete = "directory"
    parser.add_argument("options", nargs="*", metavar="key=value", help="the dataset loader's options (YAML values)")
    parser.add_argument("--format", choices=FORMATS, required=True, help="imagefolder: one PNG per image")
    parser.add_argument("--root", help="the folder to read the dataset from (default: the usual search)"
                        ).complete = "directory"


def run(args) -> int:
    from cnnlab.cli.summary import parse_options
    from cnnlab.data import load_dataset
    from cnnlab.data.imagefolder import write_imagefolder

    dataset = load_dataset(args.name, args.root, **parse_options(args.options))
    written = write_imagefolder(dataset, args.directory)
    parts = ", ".join(f"{part} {count:,}" for part, count in written.files.items())
    print(f"wrote {written.total:,} PNG files ({parts}) of {args.name} to {written.directory} in "
          f"{written.seconds:.1f} s: {dataset.num_classes} class folders in each part, {written.bytes / 1e6:.1f} MB")
    print(f"train on it: cnnlab train RECIPE data.name=imagefolder data.root={written.directory}")
    return 0
