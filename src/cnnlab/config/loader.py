"""Load, validate and override recipes.

``load_recipe('recipes/fashion_mnist.yaml', ['optim.lr=0.05'])`` -> ``RunConfig``. Unknown
keys name the nearest valid key, wrong types say which key and what it got, a name outside a
``Literal`` lists the valid ones, and a number outside its ``Range`` (or a string that does not
match its pattern) gives the key, the value and what is allowed. Override values are parsed as
YAML (``data.augment=[{name: flip_lr}]`` works). Every error is one line.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from cnnlab.config.schema import RunConfig
from cnnlab.errors import CnnlabError, did_you_mean, unknown_name


def _yaml_key(f: dataclasses.Field) -> str:
    return f.metadata.get("key", f.name)


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {_yaml_key(f): f for f in dataclasses.fields(cls)}


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)  # keep Annotated: it holds the ranges


def _choices(tp) -> list[str] | None:
    """The words a Literal, bool, or a union of them accepts; None for any other type."""
    if typing.get_origin(tp) is typing.Literal:
        return [str(a) for a in typing.get_args(tp)]
    if tp is bool:
        return ["true", "false"]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        parts = [_choices(a) for a in typing.get_args(tp)]
        return None if None in parts else [w for p in parts for w in p]
    return None


def _union(value: Any, tp, key: str, where: str) -> Any:
    """The first alternative of ``tp`` that accepts ``value``; the error of the only one, or a list."""
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    inner = [a for a in args if a is not type(None)]
    if len(inner) == 1:
        return _convert(value, inner[0], key, where)
    refusals = []
    for alt in inner:
        try:
            return _convert(value, alt, key, where)
        except CnnlabError as err:
            refusals.append((alt, err))
    words = _choices(typing.Union[tuple(inner)])
    if words is None:
        # A string refused by the string alternative (log.mlflow: true or a URI): its rule says what fits.
        for alt, err in refusals:
            if _base(alt) is type(value):
                raise CnnlabError(f"{err}{_quoted_bool(value)}") from None
        raise CnnlabError(f"{where}: '{key}' does not take {value!r}")
    hint = _quoted_bool(value) or (did_you_mean(value, words) if isinstance(value, str) else "")
    raise CnnlabError(f"{where}: '{key}' must be one of {', '.join(words)}, got {value!r}{hint}")


def _base(tp) -> Any:
    """The type under ``Annotated[T, rules]``: ``T``."""
    return typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Annotated else tp


def _quoted_bool(value: Any) -> str:
    """A hint for 'true' in quotes, which YAML reads as text (older configs wrote channels_last so)."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return f"; write {value.lower()} without quotes"
    return ""


def _constrained(value: Any, tp, key: str, where: str) -> Any:
    """``Annotated[T, rule, ...]``: convert to T, then check each rule (``Range``, ``Matches``)."""
    value = _convert(value, typing.get_args(tp)[0], key, where)
    for rule in tp.__metadata__:
        if not rule.allows(value):
            raise CnnlabError(f"{where}: '{key}' must be {rule}, got {value!r}")
    return value


def _convert(value: Any, tp, key: str, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it in the field's form."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return _union(value, tp, key, where)
    if origin is typing.Annotated:
        return _constrained(value, tp, key, where)
    if origin is typing.Literal:
        if any(value == a and type(value) is type(a) for a in args):  # 1 is not True, '1' is not 1
            return value
        raise CnnlabError(f"{where}: {unknown_name(key, str(value), [str(a) for a in args])}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise CnnlabError(f"{where}: '{key}' must be a mapping of keys, got {value!r}")
        return _build(tp, value, key, where)
    if tp is Any:
        return value
    if tp in _SCALARS:
        return _scalar(value, tp, key, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise CnnlabError(f"{where}: '{key}' must be a list, got {value!r}")
        if origin is tuple and len(args) != len(value) and Ellipsis not in args:
            raise CnnlabError(f"{where}: '{key}' must be a list of {len(args)} values, got {value!r}")
        item_types = args if origin is tuple and Ellipsis not in args else [args[0]] * len(value)
        items = [_convert(v, t, f"{key}[{i}]", where) for i, (v, t) in enumerate(zip(value, item_types))]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise CnnlabError(f"{where}: '{key}' must be a mapping, got {value!r}")
        return dict(value)
    raise TypeError(f"unsupported annotation {tp} for {key}")


_SCALARS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _scalar(value: Any, tp: type, key: str, where: str) -> Any:
    """bool, int, float or str; YAML's bools are not numbers, and ints are numbers."""
    if tp is float and isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
        try:
            value = float(value)
        except ValueError:
            pass
    is_bool = isinstance(value, bool)
    ok = {bool: is_bool, int: isinstance(value, int) and not is_bool,
          float: isinstance(value, (int, float)) and not is_bool, str: isinstance(value, str)}[tp]
    if not ok:
        hint = _quoted_bool(value) if tp is bool else ""
        raise CnnlabError(f"{where}: '{key}' must be {_SCALARS[tp]}, got {value!r}{hint}")
    if tp is float and not math.isfinite(value):
        raise CnnlabError(f"{where}: '{key}' must be a finite number, got {value!r}")
    return value


def _build(cls, data: Mapping, prefix: str, where: str):
    fields = _fields(cls)
    hints = _hints(cls)
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            valid = [f"{prefix}.{k}" if prefix else k for k in fields]
            raise CnnlabError(f"unknown key '{dotted}' in {where}{did_you_mean(dotted, valid)}")
        f = fields[key]
        kwargs[f.name] = _convert(value, hints[f.name], dotted, where)
    return cls(**kwargs)


def config_from_dict(data: Mapping, where: str = "recipe") -> RunConfig:
    """Validate a recipe mapping into a ``RunConfig`` (missing keys take their defaults)."""
    if not isinstance(data, Mapping):
        raise CnnlabError(f"{where}: a recipe must be a mapping of keys, got {type(data).__name__}")
    return _build(RunConfig, data, "", where)


def config_to_dict(config) -> dict[str, Any]:
    """The resolved config as plain YAML-ready data (tuples become lists)."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            value = config_to_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[_yaml_key(f)] = value
    return out


def _check_key_path(dotted: str, where: str) -> None:
    """Refuse an override key that names no field (keys under ``options`` are free)."""
    cls, parts = RunConfig, dotted.split(".")
    for i, part in enumerate(parts):
        fields = _fields(cls)
        prefix = ".".join(parts[:i])
        if part not in fields:
            valid = [f"{prefix}.{k}" if prefix else k for k in fields]
            raise CnnlabError(f"unknown key '{dotted}' in {where}{did_you_mean('.'.join(parts[: i + 1]), valid)}")
        tp = _hints(cls)[fields[part].name]
        if not dataclasses.is_dataclass(tp):
            if i < len(parts) - 1 and typing.get_origin(tp) is not dict:
                raise CnnlabError(f"'{'.'.join(parts[: i + 1])}' in {where} is a value, not a section")
            return
        cls = tp


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``key=value`` words to a raw recipe mapping (values parsed as YAML)."""
    for word in overrides:
        where = f"override '{word}'"
        key, sep, text = word.partition("=")
        if not sep or not key:
            raise CnnlabError(f"bad override '{word}': write key=value, e.g. optim.lr=0.05")
        _check_key_path(key, where)
        try:
            value = yaml.safe_load(text) if text else None
        except yaml.YAMLError as err:
            raise CnnlabError(f"{where}: the value is not valid YAML ({err.problem})") from err
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return data


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CnnlabError(f"recipe {path} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise CnnlabError(f"cannot read recipe {path}: {err}") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise CnnlabError(f"{path} is not valid YAML{at}: {getattr(err, 'problem', err)}") from err
    if data is None:  # an empty file, or only comments: almost surely not what was meant
        raise CnnlabError(f"recipe {path} has no keys (it is empty or only comments); set at least data.name and "
                          "model.name (see recipes/quick_test.yaml), or write {} to train every default")
    if not isinstance(data, dict):
        raise CnnlabError(f"{path}: a recipe must be a mapping of keys, got {type(data).__name__}")
    return data


def load_recipe(path: str | Path | None, overrides: list[str] = ()) -> RunConfig:
    """Read a recipe file (or start from defaults when ``path`` is None) and apply overrides."""
    data = read_yaml(path) if path else {}
    config = config_from_dict(data, str(path or "defaults"))  # report errors against the file first
    for word in overrides:  # then against the override that brought them
        data = apply_overrides(data, [word])
        config = config_from_dict(data, f"override '{word}'")
    return config


def dump_yaml(config) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False, default_flow_style=False)
