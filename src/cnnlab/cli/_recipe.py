"""The recipe a command names, read as ``cnnlab train`` reads it (``train``, ``data stats``, ``data preview``)."""

from __future__ import annotations

from cnnlab.errors import CnnlabError


def load_recipe_arg(recipe: str, overrides: list[str]):
    """The ``RunConfig`` of ``recipe`` (a file or a packaged name) with its ``key=value`` overrides;
    a sweep file is refused, naming the command that runs it."""
    from cnnlab.config import load_recipe
    from cnnlab.config.recipes import find_recipe
    from cnnlab.sweep.spec import is_sweep_file

    path = find_recipe(recipe)
    if is_sweep_file(path):
        raise CnnlabError(f"{recipe} is a sweep file (recipe and grid or search): run it with 'cnnlab sweep {recipe}', "
                          "or give the recipe it names")
    return load_recipe(path, overrides)
