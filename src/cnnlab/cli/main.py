"""Entry point of the ``cnnlab`` command.

Every module in ``cnnlab.cli`` that defines ``register(subparsers)`` adds one command, so a
new command is a new file. ``register`` must call ``set_defaults(func=...)`` with a function
``(args) -> int``. A ``CnnlabError`` is printed as one line (``cnnlab: error: ...``) with exit
status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import cnnlab
from cnnlab.errors import CnnlabError

EXIT_USER_ERROR = 2


def discover(package) -> list:
    """Import the modules of ``package`` that define ``register``, sorted by ``ORDER`` then name."""
    modules = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name == "main":
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if hasattr(module, "register"):
            modules.append(module)
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line, as every other cnnlab error."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    import cnnlab.cli as cli_package

    parser = OneLineParser(
        prog="cnnlab",
        description="Train, compare and explain CNN image classifiers.",
    )
    parser.add_argument("--version", action="version", version=f"cnnlab {cnnlab.__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in discover(cli_package):
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args.func(args) or 0)
    except CnnlabError as err:
        if args.debug:
            raise
        print(f"cnnlab: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("cnnlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
