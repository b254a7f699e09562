"""``cnnlab models [PATTERN]``: one line per registered model (parameters, design input, source)."""

from __future__ import annotations

from cnnlab.cli.table import print_table

HELP = "list the model zoo: parameters at the design input, input CxHxW, classes, source"
ORDER = 20
DESCRIPTION = "List registered models. PATTERN is a shell pattern, e.g. 'resnet*' or '*_bn'."


def add_arguments(parser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern (default: all)")
    parser.add_argument("-o", "--options", action="store_true", help="also list each model's options and defaults")


def option_text(value) -> str:
    """A default as a recipe would write it: true, [256,128], none."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(map(str, value)) + "]"
    return "none" if value is None else str(value)


def run(args) -> int:
    from cnnlab.models.registry import model_rows

    headers = ["Model", "Params", "Input", "Classes", "Source"] + (["Options"] if args.options else [])
    rows = []
    for row in model_rows(args.pattern):
        cells = [row.name, f"{row.params:,}", "x".join(map(str, row.input)), str(row.classes), row.source]
        if args.options:
            cells.append(" ".join(f"{k}={option_text(v)}" for k, v in row.options.items()))
        rows.append(cells)
    print_table(headers, rows)
    return 0
