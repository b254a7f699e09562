"""The recipe a data command reads, as ``cnnlab train`` reads it."""

from __future__ import annotations

from cnnlab.errors import CnnlabError


def add_recipe_arguments(parser) -> None:
    parser.add_argument("recipe", help="recipe YAML file or packaged recipe name (fashion_mnist)").complete = "file"
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override a recipe key, as for train")


def load_data_config(recipe: str, overrides: list[str]):
    """The ``data`` section of the recipe with its overrides; sweep files are refused."""
    from cnnlab.config import load_recipe
    from cnnlab.config.recipes import find_recipe
    from cnnlab.sweep.spec import is_sweep_file

    path = find_recipe(recipe)
    if is_sweep_file(path):
        raise CnnlabError(f"{recipe} is a sweep file; give one of its recipes, or the recipe it names")
    return load_recipe(path, overrides).data
