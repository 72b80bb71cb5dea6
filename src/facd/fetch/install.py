"""Fetch an entry of the catalogue: download it (or take a file given with ``--from``), verify
its checksum, and install it in the fetch folder.

Order of work, so that a failure leaves nothing half-installed: download into
``downloads/<file>.part`` (resumable), verify, then install: weights are renamed into
``weights/`` (atomic), archives are extracted into a staging folder inside ``data/`` whose
top-level folders are then renamed into place (a folder of the same name, from an earlier
install, is replaced). A checksum recorded on first use is written only after the install
succeeded. A download that fails verification or is refused is deleted; a user's ``--from``
file is never changed.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from facd.errors import DataError, FacdError, StorageError
from facd.fetch.archive import extract, read_member
from facd.fetch.catalogue import CATALOGUE, Source, archive_kind
from facd.fetch.download import download
from facd.fetch.store import MIRROR_ENV, fetch_home, read_records, record_checksum
from facd.fileio import copy_file, remove_file, remove_tree, sha256_file
from facd.fileio import move as move_file

__all__ = [
    "checksum_text",
    "fetch",
    "install_from",
    "installed_path",
    "is_installed",
    "lookup",
    "manual_error",
    "source_url",
]


def lookup(name: str, catalogue: dict[str, Source] | None = None) -> Source:
    """The entry called ``name``; an unknown name lists the known ones."""
    known = CATALOGUE if catalogue is None else catalogue
    if name not in known:
        raise FacdError(f"unknown name {name!r}; known: {', '.join(known)} (facd fetch --list)")
    return known[name]


def installed_path(src: Source, home: Path) -> Path:
    """What to give facd once ``src`` is installed: the weights file, the one folder a data
    entry provides (``data/DIV2K_train_HR``, for ``data.train_dirs``), or the data folder
    (for ``--data-root``)."""
    if src.kind == "weights":
        return home / "weights" / src.file
    return home / "data" / src.provides[0] if len(src.provides) == 1 else home / "data"


def is_installed(src: Source, home: Path) -> bool:
    if src.kind == "weights":
        return installed_path(src, home).is_file()
    return all((home / "data" / p).is_dir() for p in src.provides)


def _how_to_get(src: Source) -> str:
    """Where to download the file by hand, and how to install it."""
    if src.is_manual:
        pages = " or ".join(src.manual)
        return (
            f"download the zip that holds {src.member} in a browser from {pages}, then run: "
            f"facd fetch {src.name} --from FILE"
        )
    return (
        f"download {src.url} by hand (in a browser or on another machine), then run: "
        f"facd fetch {src.name} --from FILE"
    )


def source_url(src: Source) -> str | None:
    """Where to download ``src``: ``$FACD_FETCH_MIRROR/<file>`` when a mirror is set, else its
    published address (None for a manual entry)."""
    mirror = os.environ.get(MIRROR_ENV)
    return f"{mirror.rstrip('/')}/{src.file}" if mirror else src.url


def manual_error(src: Source) -> FacdError:
    """The error for a manual entry asked for without ``--from``: where to get the file."""
    return FacdError(
        f"{src.name} cannot be downloaded automatically (its file is only on cloud drives); "
        + _how_to_get(src)
    )


def _note(text: str) -> None:
    print(text, file=sys.stderr)


def _verify(src: Source, file: Path, home: Path, what: str) -> str | None:
    """Check ``file`` against the published or recorded SHA-256; return the digest to record
    after installing (trust on first use), or None when there was one to check against."""
    digest = sha256_file(file)
    expected, origin = src.sha256, src.sha256_from
    if expected is None:
        expected = read_records(home).get(src.name)
        origin = f"recorded when it was first installed, in {home / 'checksums.json'}"
    if expected is None:
        return digest
    if not digest.startswith(expected.lower()):
        shown = expected if len(expected) == len(digest) else f"{expected}..."
        raise DataError(
            f"{what}: checksum mismatch for {src.name}: its SHA-256 is {digest}, expected "
            f"{shown} ({origin})"
        )
    return None


def _record(src: Source, home: Path, digest: str | None) -> None:
    if digest is not None:
        record_checksum(home, src.name, digest)
        _note(
            f"{src.name}: no checksum is published; recorded its SHA-256 {digest} in "
            f"{home / 'checksums.json'} (later downloads must match it)"
        )


_AGAIN = "free some space and run the same command again"


def _storage(path: Path, err: OSError) -> StorageError:
    return StorageError(f"{path}: cannot install ({err.strerror or err}); {_AGAIN}")


def _install(src: Source, file: Path, home: Path, *, move: bool, progress: bool = True) -> None:
    """Put a verified ``file`` in place: weights renamed (``move``) or copied, archives
    extracted through a staging folder."""
    if src.kind == "weights":
        dest = installed_path(src, home)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            if move:
                move_file(file, dest)
            else:
                copy_file(file, dest)
        except OSError as err:
            raise _storage(dest, err) from None
        except StorageError as err:
            raise StorageError(f"{err}; {_AGAIN}") from None
        return
    data = home / "data"
    staging = data / f".staging-{src.name}"
    remove_tree(staging)
    try:
        count = extract(file, staging, src.strip)
        missing = [p for p in src.provides if not (staging / p).is_dir()]
        if missing:
            raise DataError(f"{file}: the archive has no folder {missing[0]}; is it {src.file}?")
        for entry in sorted(staging.iterdir()):
            dest = data / entry.name
            if dest.is_dir() and not dest.is_symlink():
                remove_tree(dest)
            else:
                remove_file(dest)
            move_file(entry, dest)
    except OSError as err:
        raise _storage(staging, err) from None
    except StorageError as err:
        raise StorageError(f"{err}; {_AGAIN}") from None
    finally:
        with contextlib.suppress(FacdError):
            remove_tree(staging)
    if progress:
        _note(f"{src.name}: extracted {count} files into {data}")
    if move:
        remove_file(file)


def fetch(
    name: str,
    *,
    home: Path | None = None,
    catalogue: dict[str, Source] | None = None,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Download, verify and install entry ``name`` (nothing to do when it is installed, unless
    ``force``); return :func:`installed_path`. ``$FACD_FETCH_MIRROR`` replaces the address."""
    src = lookup(name, catalogue)
    home = fetch_home() if home is None else home
    if is_installed(src, home) and not force:
        return installed_path(src, home)
    url = source_url(src)
    if url is None:
        raise manual_error(src)
    if progress:
        _note(f"{src.name}: downloading {url} (about {src.size})")
    part = home / "downloads" / f"{src.file}.part"
    download(url, part, hint=_how_to_get(src), progress=progress)
    try:
        digest = _verify(src, part, home, url)
        _install(src, part, home, move=True, progress=progress)
    except DataError as err:
        remove_file(part)
        raise DataError(f"{err}; the download was deleted") from None
    _record(src, home, digest)
    return installed_path(src, home)


def install_from(
    name: str, file: Path, *, home: Path | None = None, catalogue: dict[str, Source] | None = None
) -> Path:
    """Verify and install a file downloaded by hand. For a weights entry, ``file`` is the
    weights file itself, or a zip or tar archive holding it under its published name (the
    RCAN zip holds all three scales)."""
    src = lookup(name, catalogue)
    home = fetch_home() if home is None else home
    if not file.is_file():
        raise FacdError(f"--from {file}: no such file")
    member = src.member or src.file
    if src.kind == "weights" and archive_kind(file.name) is not None:
        taken = home / "downloads" / f"{member}.part"
        taken.parent.mkdir(parents=True, exist_ok=True)
        try:
            if not read_member(file, member, taken):
                raise FacdError(f"--from {file}: the archive holds no file named {member}")
            digest = _verify(src, taken, home, f"{member} in {file}")
            _install(src, taken, home, move=True)
        except OSError as err:
            raise _storage(taken, err) from None
        finally:
            remove_file(taken)
    else:
        digest = _verify(src, file, home, str(file))
        _install(src, file, home, move=False)
    _record(src, home, digest)
    return installed_path(src, home)


def checksum_text(src: Source, home: Path) -> str:
    """How ``src`` is verified, for ``facd fetch --list``."""
    if src.sha256:
        return f"sha256 {src.sha256}... (published)"
    recorded = read_records(home).get(src.name)
    if recorded:
        return f"sha256 {recorded[:8]}... (recorded on first use)"
    return "none published (recorded on first use)"
