"""Atomic file writes: a temporary file in the same folder, fsync, then rename."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Temporary files of atomic writes are named ``.<name>.facd-<8 random chars>.tmp`` (mkstemp adds
# the 8 characters), so that a clean-up after a crash can tell them from a user's own files.
TEMP_PREFIX_MARK = ".facd-"
TEMP_SUFFIX = ".tmp"
TEMP_RE = re.compile(r"\..+\.facd-[a-z0-9_]{8}\.tmp")


def is_facd_temp(name: str) -> bool:
    """Whether a file name is a temporary file of :func:`atomic_path` (left by a crash)."""
    return TEMP_RE.fullmatch(name) is not None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path; on success it is fsynced and renamed over ``path``.

    A crash at any point leaves either the old file or the new one, never a partial file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}{TEMP_PREFIX_MARK}", suffix=TEMP_SUFFIX, dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _default_mode())  # mkstemp creates 0600; use the usual umask
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def unpickling_reason(err: Exception) -> str:
    """The informative line of torch's weights-only refusal (e.g. 'Unsupported global: ...')."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    for ln in lines:
        if "Unsupported" in ln or "global" in ln.lower():
            return ln[:160]
    return (lines or ["unpickling refused"])[0][:160]
