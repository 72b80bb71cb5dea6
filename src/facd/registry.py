"""One registry type for the named declarations: architectures, loss terms and methods.

A :class:`Registry` maps names to declarations. Built-in declarations register themselves when
their module is imported, exactly as a plugin's do; the registry knows those modules by name
(``builtin``, an explicit list) and imports them on first use, so nothing scans a package.

Choices:

- Order: iteration gives the built-in modules' entries first, in the order of ``builtin`` (and
  within a module in registration order), then the others in registration order. The order is
  the same whichever module Python imports first: loss terms are summed in it, and messages
  list names in it.
- A name is registered once. Registering it again with a different declaration is a one-line
  :class:`ConfigError`; registering the equal declaration again (a module run twice) is a no-op.
- An unknown name is a one-line :class:`ConfigError` listing the known names.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar, overload

from facd.errors import ConfigError
from facd.typedconfig import short_repr

T = TypeVar("T")
D = TypeVar("D")

_REQUIRED = object()


class Registry(Generic[T]):
    """Declarations of one ``kind`` (``"architecture"``, ``"loss term"``, ``"method"``) by name."""

    def __init__(self, kind: str, builtin: Sequence[str] = ()) -> None:
        self.kind = kind
        #: the modules that register the built-in declarations when imported, in order
        self.builtin = tuple(builtin)
        self._items: dict[str, T] = {}
        self._rank: dict[str, int] = {}
        self._loaded = not self.builtin

    def _load(self) -> None:
        """Import the built-in modules (once; a module being imported already is skipped)."""
        if self._loaded:
            return
        self._loaded = True
        for module in self.builtin:
            importlib.import_module(module)

    def register(self, name: str, item: T, module: str = "") -> T:
        """Add ``item`` as ``name``; ``module`` is the module declaring it (it places a built-in
        one in the order of ``builtin``)."""
        self._load()
        if name in self._items and self._items[name] != item:
            raise ConfigError(
                f"{self.kind} {short_repr(name)} is already registered; choose another name"
            )
        rank = self.builtin.index(module) if module in self.builtin else len(self.builtin)
        self._items[name] = item
        self._rank[name] = rank
        last = len(self.builtin)
        ordered = sorted(self._items.items(), key=lambda kv: self._rank.get(kv[0], last))
        self._items.clear()  # reordered in place (stable sort)
        self._items.update(ordered)
        return item

    @overload
    def get(self, name: str) -> T: ...

    @overload
    def get(self, name: str, default: D) -> T | D: ...

    def get(self, name: str, default: object = _REQUIRED) -> object:
        """The declaration of ``name``; an unknown name is a one-line :class:`ConfigError` listing
        the known ones, unless a ``default`` is given (then it is returned)."""
        self._load()
        if isinstance(name, str) and name in self._items:
            return self._items[name]
        if default is not _REQUIRED:
            return default
        known = ", ".join(repr(n) for n in self._items)
        raise ConfigError(f"unknown {self.kind} {short_repr(name)}; expected one of {known}")

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        self._load()
        return isinstance(name, str) and name in self._items

    def __iter__(self) -> Iterator[str]:
        """The names, in order (see the module docstring)."""
        self._load()
        return iter(list(self._items))

    def values(self) -> list[T]:
        self._load()
        return list(self._items.values())
