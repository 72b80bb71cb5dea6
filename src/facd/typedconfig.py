"""Strict typed configs built from plain dataclasses.

``from_dict`` rejects unknown keys (naming the dotted path and the closest known key), checks
types (``int``, ``float``, ``str``, ``bool``, ``Literal``, ``list[...]``, ``X | None`` and nested
dataclasses), checks the numeric ranges declared with ``field(..., ge=, gt=, le=, lt=)`` and runs
each dataclass's ``validate()``. ``apply_overrides`` takes ``a.b=c`` strings whose values are
parsed as YAML (never evaluated). ``json_schema`` documents the keys, ranges included.

Choices:

- Floats must be finite (``.inf`` and ``.nan`` are refused) unless a field says
  ``nonfinite=True``. A number written in a notation that YAML 1.1 reads as text (``5e-4``,
  ``1E3``) is accepted where a float is expected; integers stay strict.
- Every value quoted in an error goes through :func:`short_repr` (at most 80 characters, computed
  in bounded time), so a hostile value cannot flood the terminal.
- :func:`load_yaml` refuses documents whose aliases expand past ``MAX_YAML_NODES`` nodes
  ("billion laughs") or that refer to themselves, before any Python object is built.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import reprlib
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from facd.errors import ConfigError

T = TypeVar("T")

MAX_REPR = 80
"""Longest quoted value in an error message, in characters."""

MAX_YAML_NODES = 100_000
"""Most YAML nodes a document may hold once its aliases are expanded (a config holds ~100)."""

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = MAX_REPR
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6


def short_repr(value: Any, limit: int = MAX_REPR) -> str:
    """``repr(value)`` cut to ``limit`` characters; bounded work even for huge or shared values."""
    try:
        text = _REPR.repr(value)
    except Exception:  # a repr that fails must not hide the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_str(value: Any, limit: int = MAX_REPR, *, tail: bool = False) -> str:
    """``str(value)`` cut to ``limit`` characters (for keys and file names in messages);
    ``tail=True`` keeps the end, where a path's file name is."""
    text = value if isinstance(value, str) else short_repr(value, limit)
    if len(text) <= limit:
        return text
    return "..." + text[-(limit - 3) :] if tail else text[: limit - 3] + "..."


@dataclasses.dataclass(frozen=True)
class Bounds:
    """The allowed range of a numeric field (or of each item of a numeric list)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    nonfinite: bool = False

    def interval(self) -> str:
        """``[1, 65536]``, ``(0, 1]``, ``>= 0``: the allowed range as written in messages."""
        low = f"[{_num(self.ge)}" if self.ge is not None else None
        low = f"({_num(self.gt)}" if self.gt is not None else low
        high = f"{_num(self.le)}]" if self.le is not None else None
        high = f"{_num(self.lt)})" if self.lt is not None else high
        if low and high:
            return f"{low}, {high}"
        if low:
            return (">= " if low[0] == "[" else "> ") + low[1:]
        if high:
            return ("<= " if high[-1] == "]" else "< ") + high[:-1]
        return "any finite number" if not self.nonfinite else "any number"

    def check(self, value: float, where: str) -> None:
        """Raise a one-line ConfigError naming the key, the value and the allowed range."""
        tests = (
            (self.ge, ">=", lambda b: value >= b),
            (self.gt, ">", lambda b: value > b),
            (self.le, "<=", lambda b: value <= b),
            (self.lt, "<", lambda b: value < b),
        )
        for bound, op, ok in tests:
            if bound is not None and not ok(bound):
                raise ConfigError(
                    f"'{where}' must be {op} {_num(bound)}, got {short_repr(value)}{self.suffix()}"
                )

    def suffix(self) -> str:
        """``; allowed range [1, 65536]`` when both ends are bounded (one end is in the message)."""
        two_sided = (self.ge is not None or self.gt is not None) and (
            self.le is not None or self.lt is not None
        )
        return f"; allowed range {self.interval()}" if two_sided else ""


_NO_BOUNDS = Bounds()


def _num(x: float) -> str:
    return str(int(x)) if isinstance(x, int) or float(x).is_integer() else repr(x)


def _type_suffix(bounds: Bounds) -> str:
    """``; allowed range ...`` for a type error, when the key has a declared range."""
    if all(b is None for b in (bounds.ge, bounds.gt, bounds.le, bounds.lt)):
        return ""
    return f"; allowed range {bounds.interval()}"


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{path}.{short_str(key)}" if path else short_str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = (
                f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(fields)}"
            )
            raise ConfigError(f"unknown config key '{where}'{hint}")
        bounds = fields[key].metadata.get("bounds", _NO_BOUNDS)
        kwargs[key] = _convert(hints[key], value, where, bounds)
    try:
        obj = cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"{path or 'config'}: {err}") from None
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate(path)
    return obj


def _convert(tp: Any, value: Any, where: str, bounds: Bounds = _NO_BOUNDS) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, where, bounds)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"'{where}': invalid value {short_repr(value)}")
    if origin is Literal:
        choices = get_args(tp)
        if not _hashable(value) or value not in choices:
            raise ConfigError(
                f"'{where}' must be one of {', '.join(map(repr, choices))}, got {short_repr(value)}"
            )
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{where}' must be a list, got {_kind(value)} {short_repr(value)}")
        (item_tp, *_) = get_args(tp) or (Any,)
        return [_convert(item_tp, v, f"{where}[{i}]", bounds) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"'{where}' must be a mapping, got {_kind(value)}")
        _, val_tp = get_args(tp)
        return {str(k): _convert(val_tp, v, f"{where}.{short_str(k)}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(typing.cast(type, tp), value, where)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"'{where}' must be true or false, got {short_repr(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(
                f"'{where}' must be an integer, got {_kind(value)} {short_repr(value)}"
                f"{_type_suffix(bounds)}"
            )
        bounds.check(value, where)
        return value
    if tp is float:
        number = _as_float(value)
        if number is None:
            raise ConfigError(
                f"'{where}' must be a number, got {_kind(value)} {short_repr(value)}"
                f"{_type_suffix(bounds)}"
            )
        if not bounds.nonfinite and not math.isfinite(number):
            raise ConfigError(
                f"'{where}' must be a finite number, got {short_repr(value)}{_type_suffix(bounds)}"
            )
        bounds.check(number, where)
        return number
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"'{where}' must be a string, got {_kind(value)} {short_repr(value)}")
        return value
    raise ConfigError(f"'{where}': unsupported config type {tp!r}")


def _as_float(value: Any) -> float | None:
    """A number, or a string in any notation Python reads as a float (YAML 1.1 reads ``5e-4``,
    ``1E3`` and ``1e+20`` as text); None for anything else (bools included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:  # an int too large for a float: out of any sane range
            return math.inf if value > 0 else -math.inf
    if isinstance(value, float):
        return value
    if isinstance(value, str) and len(value) <= 64:
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


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


def _dataclass_of(tp: Any) -> type | None:
    """The dataclass inside ``tp`` (``X``, ``X | None``), or None."""
    if dataclasses.is_dataclass(tp):
        return tp  # type: ignore[return-value]
    if get_origin(tp) in (Union, types.UnionType):
        for arg in get_args(tp):
            if dataclasses.is_dataclass(arg):
                return arg  # type: ignore[return-value]
    return None


def map_paths(cls: type, data: Any, fn: Callable[[str, str], str], path: str = "") -> Any:
    """A copy of the raw mapping ``data`` (as read for ``cls``) with ``fn(value, key)`` applied to
    every string of every field marked ``path=True`` (and every string of a list of them),
    following nested dataclasses and ``schema=`` dicts. Anything else, unknown keys and values of
    the wrong type included, is copied unchanged for :func:`from_dict` to judge."""
    if not isinstance(data, dict) or not dataclasses.is_dataclass(cls):
        return data
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out = dict(data)
    for key, value in data.items():
        f = fields.get(key) if isinstance(key, str) else None
        if f is None:
            continue
        where = f"{path}.{key}" if path else key
        if f.metadata.get("path"):
            if isinstance(value, str):
                out[key] = fn(value, where)
            elif isinstance(value, list):
                out[key] = [
                    fn(v, f"{where}[{i}]") if isinstance(v, str) else v for i, v in enumerate(value)
                ]
            continue
        inner = f.metadata.get("schema") or _dataclass_of(hints[key])
        if inner is not None and isinstance(value, dict):
            out[key] = map_paths(inner, value, fn, where)
    return out


def path_keys(cls: type, path: str = "") -> list[str]:
    """The dotted names of every field marked ``path=True`` in ``cls`` and its sections."""
    hints = typing.get_type_hints(cls)
    out: list[str] = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        where = f"{path}.{f.name}" if path else f.name
        if f.metadata.get("path"):
            out.append(where)
            continue
        inner = f.metadata.get("schema") or _dataclass_of(hints[f.name])
        if inner is not None:
            out += path_keys(inner, where)
    return out


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``dotted.key=value`` overrides; values are YAML scalars, flow lists or mappings.

    A mapping merges into the section it names (``train={iterations: 2}`` changes only
    ``train.iterations``), the same as one override per key; any other value replaces the key.
    """
    data = dict(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {short_repr(item)} must look like key.path=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(part.strip() for part in parts):
            raise ConfigError(f"override {short_repr(item)} must look like key.path=value")
        value = load_yaml(raw, f"override {short_repr(key.strip())}") if raw.strip() else ""
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            child = dict(child) if isinstance(child, dict) else {}
            node[part] = child
            node = child
        old = node.get(parts[-1])
        if isinstance(value, dict) and isinstance(old, dict):
            value = merge(old, value)
        node[parts[-1]] = value
    return data


class YamlTooLargeError(yaml.YAMLError):
    """A YAML document that expands past ``MAX_YAML_NODES`` nodes or refers to itself."""


class _BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` that sizes the composed node graph, aliases expanded, before constructing."""

    def compose_document(self) -> Any:
        node = super().compose_document()
        _check_expanded_size(node, MAX_YAML_NODES)
        return node


def _check_expanded_size(root: yaml.Node, limit: int) -> int:
    """The node count of ``root`` with every alias expanded; raises past ``limit`` or on a cycle.

    Iterative (no recursion limit) and memoised per node, so it costs one visit per distinct node.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            total = 1 + sum(sizes[id(c)] for c in _children(node))
            if total > limit:
                raise YamlTooLargeError(
                    f"its YAML aliases expand to more than {limit} values (nested anchors); "
                    "write the values out instead"
                )
            sizes[key] = total
        elif key in open_nodes:
            raise YamlTooLargeError("a YAML alias refers to the value that contains it")
        elif key not in sizes:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in _children(node))
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML safely (no tags beyond SafeLoader's) with bounded expansion.

    Every failure is a one-line ConfigError that starts with ``source`` (a file name, or
    ``override 'key'``) and quotes no more than ``MAX_REPR`` characters of the input.
    """
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)  # a SafeLoader subclass: no Python tags
        return loader.get_single_data()
    except YamlTooLargeError as err:
        raise ConfigError(f"{source}: refused: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None) or getattr(err, "reason", None)
        detail = f" ({short_str(problem)})" if problem else ""
        raise ConfigError(f"{source}{where}: invalid YAML{detail}") from None
    except RecursionError:
        raise ConfigError(f"{source}: refused: YAML nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def json_schema(cls: type) -> dict:
    """A JSON schema (draft 2020-12) for a config dataclass, with descriptions from field metadata
    and ``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum`` from its bounds."""
    return _schema(cls)


def _schema(tp: Any, bounds: Bounds = _NO_BOUNDS) -> dict:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return {"anyOf": [_schema(a, bounds) for a in get_args(tp)]}
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin in (list, tuple):
        (item,) = get_args(tp)[:1] or (Any,)
        return {"type": "array", "items": _schema(item, bounds)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema(get_args(tp)[1])}
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        props = {}
        for f in dataclasses.fields(tp):
            inner = f.metadata.get("schema")
            prop = (
                _schema(inner)
                if inner is not None
                else _schema(hints[f.name], f.metadata.get("bounds", _NO_BOUNDS))
            )
            if f.metadata.get("path"):
                prop["format"] = "path"
            if f.metadata.get("help"):
                prop["description"] = f.metadata["help"]
            if f.default is not dataclasses.MISSING:
                prop["default"] = f.default
            props[f.name] = prop
        return {"type": "object", "properties": props, "additionalProperties": False}
    out: dict[str, Any] = {
        bool: {"type": "boolean"},
        int: {"type": "integer"},
        float: {"type": "number"},
        str: {"type": "string"},
        type(None): {"type": "null"},
    }.get(tp, {})
    if tp in (int, float):
        for key, bound in (
            ("minimum", bounds.ge),
            ("exclusiveMinimum", bounds.gt),
            ("maximum", bounds.le),
            ("exclusiveMaximum", bounds.lt),
        ):
            if bound is not None:
                out[key] = bound
    return out


def field(  # noqa: PLR0913
    default: Any = dataclasses.MISSING,
    help: str = "",  # noqa: A002
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    nonfinite: bool = False,
    path: bool = False,
    schema: type | None = None,
    **kw: Any,
) -> Any:
    """``dataclasses.field`` with a help text and an allowed range, both used by ``from_dict``
    and the schema; lists get a factory.

    ``ge``/``gt``/``le``/``lt`` bound a number (or every item of a list of numbers);
    ``nonfinite=True`` lets a float key accept ``.inf``/``.nan`` (refused by default).
    ``path=True`` marks a file or folder name (a string or a list of strings): a config file's
    relative paths are read against the file's own folder (see :func:`map_paths`).
    ``schema`` names the dataclass that a free-form ``dict`` field follows (its paths and schema).
    """
    metadata: dict[str, Any] = {"help": help}
    if path:
        metadata["path"] = True
    if schema is not None:
        metadata["schema"] = schema
    if any(b is not None for b in (ge, gt, le, lt)) or nonfinite:
        metadata["bounds"] = Bounds(ge=ge, gt=gt, le=le, lt=lt, nonfinite=nonfinite)
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(
            default_factory=lambda: type(value)(value), metadata=metadata, **kw
        )
    return dataclasses.field(default=default, metadata=metadata, **kw)
