"""Strict typed configs built from plain dataclasses.

``from_dict`` rejects unknown keys (naming the dotted path and the closest known key), checks
types (``int``, ``float``, ``str``, ``bool``, ``Literal``, ``list[...]``, ``X | None`` and nested
dataclasses) and runs each dataclass's ``validate()``. ``apply_overrides`` takes ``a.b=c`` strings
whose values are parsed as YAML scalars (never evaluated). ``json_schema`` documents the keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from facd.errors import ConfigError

T = TypeVar("T")


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = (
                f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(fields)}"
            )
            raise ConfigError(f"unknown config key '{where}'{hint}")
        kwargs[key] = _convert(hints[key], value, where)
    try:
        obj = cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"{path or 'config'}: {err}") from None
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate(path)
    return obj


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"'{where}': invalid value {value!r}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(
                f"'{where}' must be one of {', '.join(map(repr, choices))}, got {value!r}"
            )
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{where}' must be a list, got {_kind(value)} {value!r}")
        (item_tp, *_) = get_args(tp) or (Any,)
        return [_convert(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"'{where}' must be a mapping, got {_kind(value)}")
        _, val_tp = get_args(tp)
        return {str(k): _convert(val_tp, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"'{where}' must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"'{where}' must be an integer, got {_kind(value)} {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"'{where}' must be a number, got {_kind(value)} {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"'{where}' must be a string, got {_kind(value)} {value!r}")
        return value
    raise ConfigError(f"'{where}': unsupported config type {tp!r}")


def _kind(value: Any) -> str:
    return type(value).__name__


def to_dict(obj: Any) -> Any:
    return dataclasses.asdict(obj)


def merge(base: dict, update: dict) -> dict:
    """Recursive merge of plain dicts; ``update`` wins."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``dotted.key=value`` overrides; values are YAML scalars or flow lists."""
    data = dict(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.path=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            raise ConfigError(f"override {key!r}: cannot parse value {raw!r}") from None
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            child = dict(child) if isinstance(child, dict) else {}
            node[part] = child
            node = child
        node[parts[-1]] = value
    return data


def json_schema(cls: type) -> dict:
    """A JSON schema (draft 2020-12) for a config dataclass, with descriptions from field metadata."""
    return _schema(cls)


def _schema(tp: Any) -> dict:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return {"anyOf": [_schema(a) for a in get_args(tp)]}
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin in (list, tuple):
        (item,) = get_args(tp)[:1] or (Any,)
        return {"type": "array", "items": _schema(item)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema(get_args(tp)[1])}
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        props = {}
        for f in dataclasses.fields(tp):
            prop = _schema(hints[f.name])
            if f.metadata.get("help"):
                prop["description"] = f.metadata["help"]
            if f.default is not dataclasses.MISSING:
                prop["default"] = f.default
            props[f.name] = prop
        return {"type": "object", "properties": props, "additionalProperties": False}
    return {
        bool: {"type": "boolean"},
        int: {"type": "integer"},
        float: {"type": "number"},
        str: {"type": "string"},
        type(None): {"type": "null"},
    }.get(tp, {})


def field(default: Any = dataclasses.MISSING, help: str = "", **kw: Any) -> Any:  # noqa: A002
    """``dataclasses.field`` with a help text used by the schema; lists get a factory."""
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(
            default_factory=lambda: type(value)(value), metadata={"help": help}, **kw
        )
    return dataclasses.field(default=default, metadata={"help": help}, **kw)
