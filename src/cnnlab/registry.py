"""One small registry type for models, datasets, optimizers, schedules, losses and augmentations.

As in timm's ``_registry.py``: thin entry points register themselves by name with a decorator,
``Registry.get(name)`` builds the error that lists valid names, ``names('resnet*')`` filters.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from cnnlab.errors import CnnlabError, did_you_mean, unknown_name

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> entry mapping with friendly lookup errors."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: ``@MODELS.register()`` uses the function's name, ``register('x')`` names it."""

        def add(entry: T) -> T:
            key = name or getattr(entry, "__name__")
            if key in self._entries:
                raise ValueError(f"{self.kind} '{key}' is registered twice")
            self._entries[key] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise unknown_name(self.kind, name, self._entries)
        return self._entries[name]

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style pattern, sorted."""
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


def check_options(what: str, fn: Callable, options: Mapping[str, Any], exclude: Iterable[str] = ()) -> None:
    """Refuse keyword options that ``fn`` does not take, listing the ones it does.

    ``what`` names the thing in the message, e.g. "augmentation 'random_crop'".
    """
    skip = set(exclude)
    valid = sorted(p for p in inspect.signature(fn).parameters if p not in skip)
    for key in options:
        if key not in valid:
            raise CnnlabError(
                f"{what} has no option '{key}'{did_you_mean(key, valid)} (valid: {', '.join(valid) or 'none'})"
            )


__all__ = ["Registry", "CnnlabError", "check_options"]
