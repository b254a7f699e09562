"""The command tree: discovery of the command modules and the parsers built from them.

Every module of ``cnnlab.cli`` that sets ``HELP`` is a command named after the module, and
every subpackage that sets ``HELP`` in its ``__init__`` is a group of commands (``cnnlab bench
models``) whose modules follow the same rule, so a new command is a new file. A command module
defines::

    HELP = "one line for the list of commands"
    ORDER = 10                       # its place in that list (then by name); default 100
    DESCRIPTION = "..."              # optional: the command's own --help (default: HELP)
    EPILOG = "examples: ..."         # optional: printed as written, line by line

    def add_arguments(parser): ...   # its options and positionals
    def run(args) -> int: ...        # the work: heavy imports (torch, numpy) go inside

Discovery imports the command modules, so they keep their top-level imports to the standard
library and light cnnlab modules: ``cnnlab --help`` must not import torch (2 s here). Only
the command that runs gets its parser built (``command_parser``); shell completion builds
them all (``build_parser``).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
from dataclasses import dataclass
from types import ModuleType

import cnnlab.cli
from cnnlab.errors import did_you_mean

EXIT_USER_ERROR = 2
DEFAULT_ORDER = 100


@dataclass(frozen=True)
class Command:
    """A discovered command: its name, its module, and whether it is a group of commands."""

    name: str
    module: ModuleType
    is_group: bool

    @property
    def help(self) -> str:
        return self.module.HELP


def discover(package: ModuleType) -> dict[str, Command]:
    """The commands in ``package`` (modules and subpackages that set ``HELP``), by ``ORDER`` then name."""
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name == "main":
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if hasattr(module, "HELP"):
            found.append(Command(info.name, module, info.ispkg))
    found.sort(key=lambda c: (getattr(c.module, "ORDER", DEFAULT_ORDER), c.name))
    return {c.name: c for c in found}


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line, as every other cnnlab error, and whose
    epilog (examples) is printed as written: argparse would join and rewrap its lines."""

    def error(self, message: str):  # type: ignore[override]
        wrong = re.search(r"argument (\S+): invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if wrong:  # "argument COMMAND: invalid choice: 'trian'" -> unknown command 'trian'; did you mean 'train'?
            # Python < 3.12.7 quotes each choice ('a', 'b'), later versions do not (a, b)
            what, word = wrong.group(1), wrong.group(2)
            choices = [c.strip().strip("'") for c in wrong.group(3).split(",")]
            what = "command" if what == "COMMAND" else what
            message = f"unknown {what} '{word}'{did_you_mean(word, choices)} (valid: {', '.join(choices)})"
        self.exit(EXIT_USER_ERROR, f"cnnlab: error: {message} (see '{self.prog} --help')\n")

    def format_help(self) -> str:
        epilog, self.epilog = self.epilog, None
        try:
            text = super().format_help()
        finally:
            self.epilog = epilog
        return f"{text}\n{epilog}\n" if epilog else text


def root_parser(commands: dict[str, Command], *, full: bool = False) -> OneLineParser:
    """``cnnlab [--debug] COMMAND``: global flags and the commands (with their arguments if ``full``)."""
    parser = OneLineParser(prog="cnnlab", description="Train, compare and explain CNN image classifiers.",
                           epilog="'cnnlab COMMAND --help' describes a command.")
    parser.add_argument("--version", action="version", version=f"cnnlab {cnnlab.__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    _add_commands(parser, commands, full=full)
    return parser


def group_parser(prog: str, group: Command, commands: dict[str, Command]) -> OneLineParser:
    """``cnnlab GROUP COMMAND``: the group's list of commands, none of their arguments."""
    parser = OneLineParser(prog=prog, description=_description(group.module))
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    _add_commands(parser, commands, full=False)
    return parser


def command_parser(prog: str, command: Command) -> OneLineParser:
    """The full parser of one (leaf) command."""
    parser = OneLineParser(prog=prog, description=_description(command.module),
                           epilog=getattr(command.module, "EPILOG", None))
    _fill_leaf(parser, command.module)
    return parser


def build_parser() -> OneLineParser:
    """The whole tree, every command's arguments included; slow (imports what they need)."""
    return root_parser(discover(cnnlab.cli), full=True)


def _description(module: ModuleType) -> str:
    return getattr(module, "DESCRIPTION", module.HELP)


def _fill_leaf(parser: argparse.ArgumentParser, module: ModuleType) -> None:
    # --debug after the command (or group) works too; the root parser's --help lists it once.
    parser.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    module.add_arguments(parser)


def _add_commands(parser: argparse.ArgumentParser, commands: dict[str, Command], *, full: bool) -> None:
    """Add ``commands`` as subcommands of ``parser``; ``full`` adds their arguments too."""
    if not commands:
        return
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in commands.values():
        kwargs = dict(help=command.help, description=_description(command.module),
                      epilog=getattr(command.module, "EPILOG", None))
        if not full:  # a name in the list: its words are parsed later, by its own parser
            subparsers.add_parser(command.name, add_help=False, **kwargs)
        elif command.is_group:
            _add_commands(subparsers.add_parser(command.name, **kwargs), discover(command.module), full=True)
        else:
            _fill_leaf(subparsers.add_parser(command.name, **kwargs), command.module)
