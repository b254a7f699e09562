"""``cnnlab recipes``: the recipes shipped with cnnlab, for ``cnnlab train NAME``."""

from __future__ import annotations

import os
from pathlib import Path

from cnnlab.cli.table import print_table

HELP = "list the packaged recipes: name, description, file"
ORDER = 15
DESCRIPTION = ("List the recipes shipped inside cnnlab. 'cnnlab train NAME' trains one; copy its file to "
               "start your own.")


def add_arguments(parser) -> None:
    pass


def shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return os.fspath(path)


def run(args) -> int:
    from cnnlab.config.recipes import packaged_recipes

    rows = [[r.name, r.description, shown_path(r.path)] for r in packaged_recipes()]
    print_table(["Recipe", "Description", "File"], rows)
    return 0
