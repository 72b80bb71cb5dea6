"""facd.registry.Registry: the one registry type of architectures, loss terms and methods."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from facd.errors import ConfigError
from facd.registry import Registry

REPO = Path(__file__).resolve().parents[1]


def test_register_get_contains_and_iterate() -> None:
    reg: Registry[int] = Registry("widget")
    assert reg.register("a", 1) == 1 and reg.register("b", 2) == 2
    assert reg.get("a") == 1 and reg["b"] == 2
    assert "a" in reg and "c" not in reg and 3 not in reg
    assert list(reg) == ["a", "b"] and reg.values() == [1, 2]
    assert reg.get("c", None) is None


def test_unknown_name_is_one_line_listing_the_known_ones() -> None:
    reg: Registry[int] = Registry("widget")
    reg.register("a", 1)
    reg.register("b", 2)
    with pytest.raises(ConfigError) as err:
        reg.get("c")
    assert str(err.value) == "unknown widget 'c'; expected one of 'a', 'b'"
    with pytest.raises(ConfigError, match=r"unknown widget \[1\]"):
        reg[[1]]  # type: ignore[index]


def test_a_taken_name_is_refused_unless_the_declaration_is_equal() -> None:
    reg: Registry[tuple[int, ...]] = Registry("widget")
    reg.register("a", (1,))
    reg.register("a", (1,))  # the same declaration again: a module run twice
    with pytest.raises(ConfigError) as err:
        reg.register("a", (2,))
    assert str(err.value) == "widget 'a' is already registered; choose another name"
    assert reg["a"] == (1,) and list(reg) == ["a"]


def test_built_in_modules_are_imported_on_first_use_and_ordered_by_the_list() -> None:
    """Entries of the built-in modules come first, in the list's order, whatever the order of
    registration; the rest follow in registration order. (Standard modules stand in for the
    built-in ones: importing them registers nothing.)"""
    reg: Registry[int] = Registry("widget", builtin=("json", "csv"))
    reg.register("plugin", 0)
    reg.register("second", 2, module="csv")
    reg.register("first", 1, module="json")
    reg.register("third", 3, module="csv")
    assert list(reg) == ["first", "second", "third", "plugin"]


def test_the_order_of_terms_and_archs_does_not_depend_on_which_module_is_imported_first() -> None:
    """Terms are summed in the registry's order (their floats and the optimizer's parameter
    order depend on it): importing a middle built-in module first must not change it."""
    code = (
        "import facd.distill.fakd, facd.archs.rcan\n"
        "from facd.distill.terms import TERMS\n"
        "from facd.archs.registry import ARCHS\n"
        "print(','.join(TERMS), ','.join(ARCHS))\n"
    )
    env_path = str(REPO / "src")
    out = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {env_path!r})\n{code}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    assert out == ["l1_gt,l1_t,contrast,fakd,lfd,csd,vid", "edsr,rcan,swinir"]
