"""``print_table``: the table printer every command shares.

A rich table on a terminal, plain aligned text otherwise (pipes, files, tests); columns of
numbers are right-aligned either way.
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

_NUMBER = re.compile(r"^[-+]?[\d,.]+(x[\d,.]+)*[x%]?$|^\?$|^-$")


def print_table(headers: list[str], rows: list[list[str]], *, title: str | None = None,
                file: TextIO | None = None) -> None:
    """Print ``rows`` under ``headers``; columns of numbers are right-aligned."""
    stream = file or sys.stdout
    right = [bool(rows) and all(_NUMBER.match(r[i]) for r in rows if r[i]) for i in range(len(headers))]
    if stream.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for header, is_number in zip(headers, right):
            table.add_column(header, justify="right" if is_number else "left")
        for row in rows:
            table.add_row(*row)
        Console(file=stream).print(table)
        return
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)).rstrip()

    if title:
        print(title, file=stream)
    print(line(headers), file=stream)
    print("  ".join("-" * w for w in widths), file=stream)
    for row in rows:
        print(line(row), file=stream)
