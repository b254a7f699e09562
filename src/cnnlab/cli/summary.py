"""``cnnlab summary MODEL [key=value ...] --input CxHxW``: the layer table of a model.

Per layer: name, type, output shape, parameters, trainable parameters, receptive field size
and jump, multiply-adds; then totals (parameters, MACs, activation memory for one image).
``--json`` prints the same as JSON; ``--fully-conv`` converts the model (built at its design
input) to convolutions first and summarizes it at ``--input``, showing the class-score map.
Model options are ``key=value`` words read as YAML: ``hidden=[256,128]``, ``batchnorm=true``.
"""

from __future__ import annotations

import json
import re

from cnnlab.errors import CnnlabError

HELP = "layer table of a model: shapes, parameters, receptive fields, multiply-adds"
ORDER = 25
DESCRIPTION = ("Print one row per layer and the totals, as Keras model.summary() and torchinfo do. "
               "Options may come anywhere among the key=value words.")
EPILOG = """\
examples: cnnlab summary simple_nn
          cnnlab summary mlp hidden=[256,128] --input 1x28x28 dropout=0.1
          cnnlab summary convnet --fully-conv --input 3x64x64"""


def parse_shape(text: str) -> tuple[int, int, int]:
    """'3x32x32' -> (3, 32, 32); a one-line error for anything else."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*[xX,]\s*(\d+)\s*", text)
    if not match or 0 in (shape := tuple(int(g) for g in match.groups())):
        raise CnnlabError(f"input shape must be CxHxW with positive sizes, such as 3x32x32; got '{text}'")
    return shape  # type: ignore[return-value]


def parse_options(words: list[str]) -> dict:
    """['batchnorm=true', 'hidden=[256,128]'] -> {'batchnorm': True, 'hidden': [256, 128]} (YAML values)."""
    import yaml  # here, not at the top: every command module is imported when cnnlab starts

    options = {}
    for word in words:
        key, sep, text = word.partition("=")
        if not sep or not key:
            raise CnnlabError(f"model options are key=value words, such as dropout=0.5; got '{word}'")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise CnnlabError(f"cannot read the value of option '{key}': '{text}' is not YAML ({err.problem})") from err
        if value is None:
            raise CnnlabError(f"option '{key}' has no value; write {key}=VALUE")
        options[key] = value
    return options


def run(args) -> int:
    from cnnlab.analysis.summary import summarize, table, totals_lines
    from cnnlab.cli.table import print_table
    from cnnlab.models import MODELS, build_model, to_fully_conv

    entry = MODELS.get(args.model)
    C, H, W = parse_shape(args.input) if args.input else entry.default_input
    options = parse_options(args.model_options)
    if args.classes is not None and args.classes < 1:
        raise CnnlabError(f"--classes must be at least 1, got {args.classes}")
    if args.fully_conv:
        design = entry.default_input[1:]
        model = build_model(args.model, in_chans=C, num_classes=args.classes, input_size=design, **options)
        model = to_fully_conv(model, (C, *design))
    else:
        model = build_model(args.model, in_chans=C, num_classes=args.classes, input_size=(H, W), **options)
    summary = summarize(model, (C, H, W))
    if args.fully_conv:
        summary.notes.append(
            f"Fully convolutional: designed for {C}x{design[0]}x{design[1]}; at {C}x{H}x{W} it gives a "
            f"{'x'.join(map(str, summary.output_shape))} class-score map"
        )
    if args.json:
        print(json.dumps({"model": args.model, "options": options, "fully_conv": args.fully_conv,
                          **summary.to_dict()}, indent=2))
        return 0
    headers, rows = table(summary)
    title = f"{args.model}{' (fully convolutional)' if args.fully_conv else ''}: {entry.source}"
    print_table(headers, rows, title=title)
    print("\n".join(totals_lines(summary)))
    return 0


def add_arguments(parser) -> None:
    parser.add_argument("model", help="registered model name (see 'cnnlab models')")
    parser.add_argument("model_options", nargs="*", metavar="key=value",
                        help="model options, values read as YAML (see 'cnnlab models -o')")
    parser.add_argument("--input", help="input shape CxHxW (default: the model's design input)")
    parser.add_argument("--classes", type=int, help="number of classes (default: the model's)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--fully-conv", action="store_true",
                        help="replace the Linear layers by equivalent convolutions, then summarize at --input")
