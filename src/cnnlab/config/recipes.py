"""The recipes shipped inside the package, and how a word on the command line finds one.

Recipes live in ``cnnlab/recipes/`` (package data, installed with cnnlab; subfolders such as
``fast/`` are allowed). A recipe's name is its path there without ``.yaml``:
``fashion_mnist``, ``fast/fashion_mnist``. Its description is the first sentence of its
leading comment. Nothing here reads YAML or imports torch, so ``cnnlab recipes`` is quick.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cnnlab.errors import CnnlabError, did_you_mean

#: Where the packaged recipes are; a real folder in an installed or editable cnnlab.
RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"
SUFFIXES = (".yaml", ".yml")
# A full stop before a space or the end, but not the one of "e.g." or "i.e." inside a sentence.
_SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)\.(\s|$)")


@dataclass(frozen=True)
class Recipe:
    """A packaged recipe: ``name`` as the CLI takes it, its file, its one-line description."""

    name: str
    path: Path
    description: str


def describe(path: Path) -> str:
    """The first sentence of the comment block that opens the YAML file at ``path`` ('' if none)."""
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        words += line.lstrip("#").split()
    text = " ".join(words)
    end = _SENTENCE_END.search(text)
    return text[:end.start() + 1] if end else text


def packaged_recipes(folder: Path = RECIPES_DIR) -> list[Recipe]:
    """Every recipe under ``folder``, subfolders included, sorted by name."""
    paths = [p for p in folder.rglob("*") if p.suffix in SUFFIXES and p.is_file()]
    recipes = [Recipe(p.relative_to(folder).with_suffix("").as_posix(), p, describe(p)) for p in paths]
    return sorted(recipes, key=lambda r: r.name)


def find_recipe(word: str, folder: Path = RECIPES_DIR) -> Path:
    """The recipe file ``word`` names: an existing file, a path ending in .yaml, or a packaged name.

    A path that does not exist is returned as it is, so the loader reports it as a missing
    file; a name that is neither a file nor a packaged recipe raises a one-line
    ``CnnlabError`` with the nearest packaged name.
    """
    path = Path(word)
    if path.is_file() or path.suffix in SUFFIXES:
        return path
    names = {r.name: r.path for r in packaged_recipes(folder)}
    if word in names:
        return names[word]
    raise CnnlabError(f"no recipe file or packaged recipe named '{word}'{did_you_mean(word, names)} "
                      "('cnnlab recipes' lists the packaged ones)")
