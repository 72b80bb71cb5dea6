"""HTTP(S) download into a ``.part`` file that a later attempt resumes (HTTP ``Range``).

A connection that drops mid-file is retried at once, from the bytes already on disk, up to
:data:`ATTEMPTS` times; after that the ``.part`` file stays and the next ``facd fetch`` run
resumes it. A server that ignores ``Range`` (status 200 instead of 206) sends the whole file
again, which replaces the part. Errors are one line: an HTTP error status names the status and
the address; an unreachable host says how to install a file downloaded elsewhere (``hint``);
a full disk is a :class:`~facd.errors.StorageError` (exit 4) that keeps the ``.part`` file.
"""

from __future__ import annotations

import errno
import http.client
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from tqdm import tqdm

from facd.errors import FacdError, StorageError
from facd.fileio import open_binary, remove_file

__all__ = ["ATTEMPTS", "download"]

ATTEMPTS = 3
"""Tries of one download within a run before it stops (the ``.part`` file is kept)."""

CHUNK = 1 << 20
TIMEOUT_S = 60.0

_DISK_ERRORS = {
    getattr(errno, n) for n in ("ENOSPC", "EDQUOT", "EFBIG", "EROFS") if hasattr(errno, n)
}


class _Interrupted(Exception):
    """The connection ended before the whole file arrived; the attempt may be repeated."""


def download(url: str, part: Path, *, hint: str, progress: bool = True) -> None:
    """Download ``url`` into ``part``, resuming from the bytes ``part`` already holds.

    ``hint`` ends the message of a network error (how to get the file another way).
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    reason = ""
    for _ in range(ATTEMPTS):
        try:
            _attempt(url, part, hint, progress)
            return
        except _Interrupted as err:
            reason = str(err)
    kept = part.stat().st_size if part.exists() else 0
    raise FacdError(
        f"{url}: the download stopped {ATTEMPTS} times ({reason}); {kept} bytes are kept in "
        f"{part}: run the same command again to resume"
    )


def _open(url: str, start: int, hint: str) -> http.client.HTTPResponse | None:
    """The server's answer; None when the part already holds the whole file."""
    request = urllib.request.Request(url, headers={"User-Agent": "facd-fetch"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start:  # nothing left after `start`: complete, or not this file
            if err.headers.get("Content-Range", "") == f"bytes */{start}":
                return None
            raise _Interrupted("the server refused to resume; starting again") from None
        raise FacdError(
            f"{url}: the server answered HTTP {err.code} {err.reason}; {hint}"
        ) from None
    except (urllib.error.URLError, OSError) as err:
        why = getattr(err, "reason", err)
        host = urlsplit(url).netloc
        raise FacdError(f"cannot reach {host} ({why}); {hint}") from None


def _attempt(url: str, part: Path, hint: str, progress: bool) -> None:
    start = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, start, hint)
    except _Interrupted:
        remove_file(part)
        raise
    if response is None:
        return
    with response:
        resumed = start > 0 and response.status == 206
        if resumed and not response.headers.get("Content-Range", "").startswith(f"bytes {start}-"):
            remove_file(part)  # another range than the one asked for: start over
            raise _Interrupted("the server answered with another range; starting again")
        if not resumed:
            start = 0  # a full answer (200): the part is replaced
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        bar = tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=part.name.removesuffix(".part"), disable=not progress, file=sys.stderr,
                   leave=False)  # fmt: skip
        try:
            with bar, open_binary(part, append=resumed) as out:
                while True:
                    try:
                        chunk = response.read(CHUNK)
                    except (http.client.HTTPException, OSError) as err:  # reset, timeout, cut
                        raise _Interrupted(f"{type(err).__name__}: {err}") from None
                    if not chunk:
                        break
                    out.write(chunk)
                    bar.update(len(chunk))
        except OSError as err:  # writing (or flushing) the part failed
            raise _storage_error(part, err) from None
    received = part.stat().st_size
    if total is not None and received < total:
        raise _Interrupted(f"the connection closed after {received} of {total} bytes")


def _storage_error(part: Path, err: OSError) -> StorageError:
    if err.errno in _DISK_ERRORS:
        return StorageError(
            f"{part}: cannot write the download ({err.strerror}); free some space and run the "
            "same command again: the download resumes from the bytes kept in that file"
        )
    return StorageError(f"{part}: cannot write the download ({err})")
