"""User-facing errors: one line that says what is wrong and how to fix it."""

from __future__ import annotations

import difflib
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
