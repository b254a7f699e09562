"""The recipe arguments of ``cnnlab data stats`` and ``data preview``, as ``cnnlab train`` takes them."""

from __future__ import annotations


def add_recipe_arguments(parser) -> None:
    parser.add_argument("recipe", help="recipe YAML file or packaged recipe name (fashion_mnist)").complete = "file"
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override a recipe key, as for train")


def load_data_config(recipe: str, overrides: list[str]):
    """The ``data`` section of the recipe with its overrides (``cnnlab.cli._recipe.load_recipe_arg``)."""
    from cnnlab.cli._recipe import load_recipe_arg

    return load_recipe_arg(recipe, overrides).data
