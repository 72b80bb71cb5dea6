"""Where fetched files live, and the checksums recorded on first use.

The fetch folder is ``$FACD_HOME``, else ``facd`` in the platform's cache folder:
``$XDG_CACHE_HOME/facd`` or ``~/.cache/facd`` on Linux, ``~/Library/Caches/facd`` on macOS,
``%LOCALAPPDATA%\\facd`` on Windows. On Linux without ``XDG_CACHE_HOME`` that is the folder the
LR cache of the training data uses too (``$FACD_CACHE``, default ``~/.cache/facd``, files under
``lr/``); the subfolders never overlap::

    <home>/weights/<published file name>     weights, e.g. edsr_x4-4f62e9ef.pt
    <home>/data/<Set>/HR/*.png               benchmark sets (the facd eval layout)
    <home>/data/DIV2K_train_HR/*.png         DIV2K
    <home>/downloads/<file>.part             an interrupted download, resumed by the next run
    <home>/checksums.json                    SHA-256 recorded at first download (see below)

Trust on first use: where no checksum is published, the SHA-256 of the first file installed is
recorded in ``checksums.json``, and every later download or ``--from`` file of that entry must
match it. Deleting the entry's line accepts a new file.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from facd.errors import FacdError
from facd.fileio import atomic_write_text

__all__ = [
    "HOME_ENV",
    "MIRROR_ENV",
    "default_data_root",
    "fetch_home",
    "read_records",
    "record_checksum",
]

HOME_ENV = "FACD_HOME"
"""Environment variable naming the fetch folder."""

MIRROR_ENV = "FACD_FETCH_MIRROR"
"""Environment variable naming a base address that serves every file under its published name
(a local mirror); it replaces each entry's own address."""

SHARED_DATA_ROOT = Path("..") / "shared" / "data"
"""The data root of a checkout beside ``shared/data`` (facd eval's default before fetching)."""


def _platform_cache() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"


def fetch_home() -> Path:
    """``$FACD_HOME``, else ``<platform cache folder>/facd``."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser().absolute() if env else _platform_cache() / "facd"


def default_data_root() -> Path:
    """The benchmark data root when none is given: ``../shared/data`` where that folder exists
    (a checkout beside the shared data), else ``<fetch folder>/data``, where
    ``facd fetch benchmark`` installs the sets."""
    return SHARED_DATA_ROOT if SHARED_DATA_ROOT.is_dir() else fetch_home() / "data"


def benchmark_root(configured: Path, name: str) -> Path:
    """Where set ``name`` is found: the configured folder (``val.data_root``) when it holds
    ``<name>/HR``, else the fetch folder's ``data`` when ``facd fetch benchmark`` put it there,
    else the configured folder (whose error then names what is missing)."""
    if (configured / name / "HR").is_dir():
        return configured
    fetched = fetch_home() / "data"
    return fetched if (fetched / name / "HR").is_dir() else configured


def _records_file(home: Path) -> Path:
    return home / "checksums.json"


def read_records(home: Path) -> dict[str, str]:
    """The SHA-256 recorded for each entry name (empty when nothing was recorded yet)."""
    path = _records_file(home)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise FacdError(f"{path}: cannot read the recorded checksums ({err}); delete the file "
                        "to record them anew") from None  # fmt: skip
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise FacdError(f"{path}: not a JSON object of name: sha256; delete the file to record "
                        "the checksums anew")  # fmt: skip
    return data


def record_checksum(home: Path, name: str, digest: str) -> None:
    """Record ``digest`` as the SHA-256 of entry ``name`` (atomically)."""
    records = read_records(home)
    records[name] = digest
    atomic_write_text(_records_file(home), json.dumps(records, indent=2, sort_keys=True) + "\n")
