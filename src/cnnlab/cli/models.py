"""``cnnlab models [PATTERN]``: one line per registered model (parameters, design input, source).

"""

from __future__ import annotations

from cnnlab.cli.table import print_table
from cnnlab.errors import CnnlabError

ORDER = 20
def model_rows(pattern: str, *, with_options: bool) -> list[list[str]]:
    """One row per model matching ``pattern``; parameters counted on the meta device (no memory, no init)."""
    import torch

    from cnnlab.models import MODELS, build_model, count_parameters

    names = MODELS.names(pattern)
    if not names:
        raise CnnlabError(f"no model matches '{pattern}' (models: {', '.join(MODELS.names())})")
    rows = []
    for name in names:
        entry = MODELS.get(name)
        with torch.device("meta"):
            params = count_parameters(build_model(name))
        row = [name, f"{params:,}", "x".join(map(str, entry.default_input)), str(entry.default_classes), entry.source]
        if with_options:
            row.append(" ".join(f"{k}={_option_text(v)}" for k, v in entry.options().items()))
        rows.append(row)
    return rows


def _option_text(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(map(str, value)) + "]"
    return "none" if value is None else str(value)


def run(args) -> int:
    headers = ["Model", "Params", "Input", "Classes", "Source"] + (["Options"] if args.options else [])
    print_table(headers, model_rows(args.pattern, with_options=args.options))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the model zoo: parameters at the design input, input CxHxW, classes, source",
        description="List registered models. PATTERN is a shell pattern, e.g. 'resnet*' or '*_bn'.",
    )
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern (default: all)")
    parser.add_argument("-o", "--options", action="store_true", help="also list each model's options and defaults")
    parser.set_defaults(func=run)
