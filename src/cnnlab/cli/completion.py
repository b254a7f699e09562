"""``cnnlab completion bash|zsh|tcsh``: the shell completion script, made by shtab."""

from __future__ import annotations

import argparse

from cnnlab.cli.commands import build_parser

HELP = "print a shell completion script (bash, zsh or tcsh)"
ORDER = 90
SHELLS = ("bash", "zsh", "tcsh")
EPILOG = """\
examples: source <(cnnlab completion bash)                                 # in ~/.bashrc
          cnnlab completion zsh > ~/.local/share/zsh_completion/_cnnlab    # that folder on $fpath
          cnnlab completion tcsh > ~/.local/share/tcsh_completion/cnnlab   # source it in ~/.tcshrc"""


def add_arguments(parser) -> None:
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")


def mark_paths(parser: argparse.ArgumentParser, kinds: dict[str, dict]) -> None:
    """Give shtab its path completers: commands mark arguments ``.complete = "file"`` or ``"directory"``.

    The marks are words so that building a command's parser does not import shtab (50 ms).
    """
    for action in parser._actions:
        if isinstance(getattr(action, "complete", None), str):
            action.complete = kinds[action.complete]
        if isinstance(action, argparse._SubParsersAction):
            for subparser in set(action.choices.values()):
                mark_paths(subparser, kinds)


def run(args) -> int:
    import shtab  # 50 ms, only for this command

    parser = build_parser()
    mark_paths(parser, {"file": shtab.FILE, "directory": shtab.DIRECTORY})
    print(shtab.complete(parser, shell=args.shell), end="")
    return 0
