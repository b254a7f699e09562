"""User-facing errors: one line that says what is wrong and how to fix it."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable


class CnnlabError(Exception):
    """An error the user can fix. The CLI prints it as one line and exits with status 2."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return "; did you mean 'x'?" for the closest choice, or "" when nothing is close.

    Closeness is difflib's ratio; ties go to the longer common prefix, so 'resnet21' suggests
    'resnet20' rather than 'resnet32'.
    """

    def prefix(choice: str) -> int:
        return next((i for i, (a, b) in enumerate(zip(word, choice)) if a != b), min(len(word), len(choice)))

    scored = [(difflib.SequenceMatcher(None, word, c).ratio(), prefix(c), c) for c in choices]
    scored = [s for s in scored if s[0] >= 0.6]
    return f"; did you mean '{max(scored)[2]}'?" if scored else ""


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> CnnlabError:
    """Build the standard error for a name missing from a registry or a set of options."""
    valid = sorted(valid)
    return CnnlabError(f"unknown {kind} '{name}'{did_you_mean(name, valid)} (valid: {', '.join(valid)})")


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an error's message, without terminal colours, at most ``limit``
    characters; the exception's type name when it has no message. For one-line errors that quote
    a library's own (many are pages long)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    line = next((s.strip() for s in text.splitlines() if s.strip()), type(err).__name__)
    return line if len(line) <= limit else line[:limit - 3] + "..."
