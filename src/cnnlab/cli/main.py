"""Entry point of the ``cnnlab`` command.

Commands are discovered from the modules of ``cnnlab.cli`` (see ``cnnlab.cli.commands``), so
a new command is a new file. ``main`` parses the global flags and the command's name with a
parser that knows only the names, then builds the parser of the one command that runs and
parses the rest of the words with ``parse_intermixed_args``: options may come anywhere among
``key=value`` words. A ``CnnlabError`` is printed as one line (``cnnlab: error: ...``) with
exit status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import errno
import sys

import cnnlab.cli
from cnnlab.cli.commands import (
    EXIT_USER_ERROR,
    Command,
    command_parser,
    discover,
    group_parser,
    root_parser,
)
from cnnlab.errors import CnnlabError


def split_at_command(words: list[str]) -> tuple[list[str], list[str]]:
    """(flags up to and including the first word that is not an option, the words after it).

    Global and group flags take no values, so the first plain word is the command's name.
    """
    index = next((i for i, word in enumerate(words) if not word.startswith("-")), len(words))
    return words[:index + 1], words[index + 1:]


def resolve(words: list[str]) -> tuple[Command | None, str, list[str], bool]:
    """Walk the command tree: (the leaf command, its prog, its own words, --debug given before it).

    The command is None when none was named (the help of the level reached is printed then).
    """
    commands = discover(cnnlab.cli)
    parser = root_parser(commands)
    head, words = split_at_command(words)
    names = parser.parse_args(head)
    debug, prog = names.debug, "cnnlab"
    while names.command is not None:
        command, prog = commands[names.command], f"{prog} {names.command}"
        if not command.is_group:
            return command, prog, words, debug
        commands = discover(command.module)
        parser = group_parser(prog, command, commands)
        head, words = split_at_command(words)
        names = parser.parse_args(head)
        debug = debug or names.debug
    parser.print_help()
    return None, prog, words, debug


def describe(err: Exception) -> str:
    """One line for a user error, or for what the file system refused (a full disk, a read-only
    folder): atomic writes leave the earlier files whole, so saying where is enough."""
    if not isinstance(err, OSError) or err.strerror is None:
        return str(err)
    where = f" writing {err.filename}" if err.filename else ""
    hints = {errno.ENOSPC: "free some space, or set output_dir= to another disk",
             errno.EROFS: "set output_dir= to a writable folder", errno.EACCES: "check the folder's permissions, "
             "or set output_dir= to a folder you can write", errno.EDQUOT: "free some space"}
    hint = hints.get(err.errno, "check the path")
    return f"{err.strerror}{where}; {hint} (files written before are intact)"


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    command, prog, words, debug = resolve(words)
    if command is None:
        return EXIT_USER_ERROR
    args = command_parser(prog, command).parse_intermixed_args(words)
    args.debug = args.debug or debug
    try:
        return int(command.module.run(args) or 0)
    except (CnnlabError, OSError) as err:
        if args.debug:
            raise
        print(f"cnnlab: error: {describe(err)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("cnnlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
