"""Safe extraction of zip and tar archives into a folder.

Every member is checked before anything is written: a member whose path is absolute, has a
drive letter, or climbs out with ``..``, and any link or device member, refuses the whole
archive with a one-line :class:`~facd.errors.DataError` (nothing is extracted). Files are then
copied out one by one to paths computed here (``tarfile``'s and ``zipfile``'s own extraction is
not used), below the target folder. ``strip`` drops a leading folder from every path
(``benchmark/Set5/HR/baby.png`` -> ``Set5/HR/baby.png``). A full disk while extracting is a
:class:`~facd.errors.StorageError`; the caller extracts into a staging folder it removes then.
"""

from __future__ import annotations

import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path, PurePosixPath
from typing import IO

from facd.errors import DataError
from facd.fileio import write_stream

__all__ = ["extract", "read_member"]

_DRIVE = re.compile(r"^[A-Za-z]:")


def _relative(name: str, strip: str, archive: Path) -> PurePosixPath | None:
    """The member's path below the target folder (None for the stripped folder itself)."""
    text = name.replace("\\", "/")
    path = PurePosixPath(text)
    if path.is_absolute() or _DRIVE.match(text) or ".." in path.parts:
        raise _refuse(archive, name, "would be written outside the target folder")
    parts = [p for p in path.parts if p not in ("", ".")]
    if strip and parts and parts[0] == strip:
        parts = parts[1:]
    return PurePosixPath(*parts) if parts else None


def _refuse(archive: Path, name: str, why: str) -> DataError:
    return DataError(
        f"{archive}: member {name!r} {why}; the archive is refused and nothing was extracted"
    )


Opener = Callable[[], IO[bytes]]
Member = tuple[str, bool, Opener]
"""A member's name, whether it is a folder, and a function that opens its bytes."""

_READ_ERRORS = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error)


@contextmanager
def _members(archive: Path) -> Iterator[list[Member]]:
    """Every member of a zip or tar archive; links and devices refuse the archive."""
    found: list[Member] = []
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise _refuse(archive, info.filename, "is a symbolic link")
                found.append((info.filename, info.is_dir(), partial(zf.open, info)))
            yield found
        return
    if not tarfile.is_tarfile(archive):
        raise DataError(f"{archive}: not a zip or tar archive")
    with tarfile.open(archive, "r:*") as tf:
        for member in tf.getmembers():
            if member.issym() or member.islnk():
                raise _refuse(archive, member.name, "is a link")
            if not (member.isfile() or member.isdir()):
                raise _refuse(archive, member.name, "is a device or special file")
            found.append((member.name, member.isdir(), partial(_tar_stream, tf, member)))
        yield found


def _tar_stream(tf: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    stream = tf.extractfile(member)
    if stream is None:  # not reached: only regular files are opened
        raise DataError(f"member {member.name!r} of a tar archive has no data")
    return stream


def extract(archive: Path, target: Path, strip: str = "") -> int:
    """Extract ``archive`` below ``target`` (created if needed); return the number of files."""
    try:
        return _extract(archive, target, strip)
    except _READ_ERRORS as err:
        raise DataError(f"{archive}: damaged archive ({err})") from None


def _extract(archive: Path, target: Path, strip: str) -> int:
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    with _members(archive) as members:
        planned = []
        for name, is_dir, handle in members:
            rel = _relative(name, strip, archive)
            if rel is None:
                continue
            dest = (root / rel).resolve()
            if root not in dest.parents:  # belt and braces: resolve() saw a link on disk
                raise _refuse(archive, name, "would be written outside the target folder")
            planned.append((dest, is_dir, handle))
        files = 0
        for dest, is_dir, handle in planned:
            if is_dir:
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            with handle() as src:
                write_stream(dest, src)
            files += 1
    return files


def read_member(archive: Path, file_name: str, out: Path) -> bool:
    """Copy the member of ``archive`` whose base name is ``file_name`` to ``out``; False when
    the archive has no such member."""
    try:
        return _read_member(archive, file_name, out)
    except _READ_ERRORS as err:
        raise DataError(f"{archive}: damaged archive ({err})") from None


def _read_member(archive: Path, file_name: str, out: Path) -> bool:
    with _members(archive) as members:
        for name, is_dir, handle in members:
            if not is_dir and PurePosixPath(name.replace("\\", "/")).name == file_name:
                with handle() as src:
                    write_stream(out, src)
                return True
    return False
