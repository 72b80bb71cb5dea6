"""Files shipped inside the facd package, named ``facd-asset:<file name>``.

A config or a command line that names a shipped file (the quickstart teacher,
``facd-asset:teacher-edsr-tiny-t-x4.safetensors``) works the same from a source checkout and
from a pip-installed wheel: :func:`resolve_asset` finds the file with ``importlib.resources``,
wherever the package lives. Any other text is an ordinary path and is returned unchanged.

Choices: the name is a bare file name (no folders, no ``..``), so an asset name cannot reach
outside this folder; an unknown name is a one-line :class:`~facd.errors.ConfigError` that lists
the shipped assets.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from facd.errors import ConfigError

SCHEME = "facd-asset:"
"""Prefix of an asset name: ``facd-asset:teacher-edsr-tiny-t-x4.safetensors``."""

QUICKSTART_TEACHER = f"{SCHEME}teacher-edsr-tiny-t-x4.safetensors"
"""The shipped EDSR 6x32 x4 teacher (``configs/teachers/quickstart-teacher-x4.yaml``)."""


def is_asset(text: str) -> bool:
    """True when ``text`` names a shipped asset (``facd-asset:...``)."""
    return isinstance(text, str) and text.startswith(SCHEME)


def shipped_assets() -> list[str]:
    """The file names of the shipped assets (code files excluded)."""
    folder = resources.files(__name__)
    return sorted(
        p.name for p in folder.iterdir() if p.is_file() and not p.name.endswith((".py", ".pyc"))
    )


def resolve_asset(text: str | Path, where: str = "") -> Path:
    """The file that ``text`` names: a shipped asset for ``facd-asset:NAME``, else ``Path(text)``.

    ``where`` (a config key or an option) starts the error message when the asset is unknown.
    """
    if not is_asset(str(text)):
        return Path(text)
    name = str(text)[len(SCHEME) :]
    prefix = f"'{where}': " if where else ""
    known = ", ".join(SCHEME + n for n in shipped_assets()) or "none"
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ConfigError(f"{prefix}{text!r} is not an asset name; shipped assets: {known}")
    found = resources.files(__name__) / name
    if not found.is_file() or name.endswith((".py", ".pyc")):
        raise ConfigError(f"{prefix}no shipped asset named {name!r}; shipped assets: {known}")
    return Path(str(found))  # a regular install (wheel, editable, source) keeps real files
