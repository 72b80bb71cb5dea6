"""Checks that a command's output paths can be written, run before any work starts.

A command that computes for minutes and then fails to write its result wastes the user's time,
and one that fails half-way through a batch leaves a partial result. Each command therefore
checks its output paths first and stops with a one-line :class:`~facd.errors.FacdError` naming
the option and the path. Nothing is created by a check: a missing folder is judged by its
nearest existing ancestor, which the command's writer will create the folder in.

A name longer than the file system accepts is refused too
(:func:`facd.fileio.check_name_length`). Writability is ``os.access``: it reports read-only
file systems and, for non-root users, permission bits (root may write anywhere else, as the
write itself would).
"""

from __future__ import annotations

import os
from pathlib import Path

from facd.errors import FacdError
from facd.fileio import check_name_length

__all__ = ["check_writable_dir", "check_writable_file"]


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (``.`` for a relative path with none)."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(".")


def _check_can_create(path: Path, flag: str, what: str) -> None:
    """``path`` does not exist: its nearest existing ancestor must be a writable folder."""
    base = _nearest_existing(path)
    if not base.is_dir():
        raise FacdError(
            f"{flag} {path}: cannot create this {what}, because {base} is a file, not a folder"
        )
    if not os.access(base, os.W_OK | os.X_OK):
        raise FacdError(
            f"{flag} {path}: cannot create this {what}, because folder {base} is not writable; "
            "choose another location"
        )


def check_writable_dir(path: str | os.PathLike[str], flag: str) -> Path:
    """Raise unless ``path`` is a writable folder or can be created as one; returns it.

    ``flag`` names the option in messages (``"-o"``, ``"OUT_DIR"``, ``"--save-images"``).
    """
    path = check_name_length(path, flag)
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise FacdError(f"{flag} {path}: folder is not writable; choose another folder")
        return path
    if os.path.lexists(path):
        raise FacdError(f"{flag} {path}: is a file, but a folder is needed; choose a folder")
    _check_can_create(path, flag, "folder")
    return path


def check_writable_file(path: str | os.PathLike[str], flag: str, example: str = "out") -> Path:
    """Raise unless a file can be written at ``path`` (new or replaced); returns it.

    Files are written atomically (a temporary file in the same folder, then renamed), so what
    matters is the folder, not the permissions of an existing file. Existing non-regular files
    (devices, fifos) are refused, since the rename would replace them. ``example`` is a file
    name suggested when ``path`` is a folder.
    """
    text = os.fspath(path)
    path = check_name_length(path, flag)
    if path.is_dir() or text.endswith(("/", os.sep)):
        raise FacdError(
            f"{flag} {text}: is a folder, but a file is needed; give a file name, "
            f"e.g. {path / example}"
        )
    if os.path.lexists(path) and not path.is_file() and not path.is_symlink():
        raise FacdError(f"{flag} {path}: exists and is not a regular file; choose another name")
    parent = path.parent
    if parent.is_dir():
        if not os.access(parent, os.W_OK | os.X_OK):
            raise FacdError(
                f"{flag} {path}: folder {parent} is not writable; choose another location"
            )
        return path
    if os.path.lexists(parent):
        raise FacdError(f"{flag} {path}: {parent} is a file, not a folder")
    _check_can_create(parent, flag, "file's folder")
    return path
