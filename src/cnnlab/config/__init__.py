"""Recipes: the validated configuration of a run (``schema``) and how it is read (``loader``)."""

from cnnlab.config.loader import (
    apply_overrides,
    config_from_dict,
    config_to_dict,
    dump_yaml,
    load_recipe,
)
from cnnlab.config.schema import RunConfig

__all__ = ["RunConfig", "apply_overrides", "config_from_dict", "config_to_dict", "dump_yaml", "load_recipe"]
