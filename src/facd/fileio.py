"""Atomic file writes (a temporary file in the same folder, fsync, then rename), and reading
PyTorch files without unpickling code."""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from facd.errors import CheckpointError

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
        if "Unsupported" in ln or "GLOBAL" in ln or "unrecognized function" in ln:
            return ln[:160]
    return (lines or ["unpickling refused"])[0][:160]


# What torch's weights-only unpickler says when the pickle names a class or function that is not
# allowed. Any other unpickling failure (an unknown opcode, a truncated stream) means damage.
_OBJECT_REFUSAL = re.compile(
    r"\bGLOBAL\b|unrecognized function|Can only (?:create new object|build)"
)


def is_pickled_object_refusal(err: BaseException) -> bool:
    """Whether ``torch.load(weights_only=True)`` refused a pickled class or function.

    Only then is the file "holding objects other than tensors"; every other failure (random
    bytes, a truncated zip, a damaged member) is a corrupt file.
    """
    return isinstance(err, pickle.UnpicklingError) and bool(_OBJECT_REFUSAL.search(str(err)))


def load_error_reason(err: BaseException) -> str:
    """One short line saying why ``torch.load`` failed (torch's messages run to paragraphs)."""
    if isinstance(err, pickle.UnpicklingError):
        return unpickling_reason(err)
    if isinstance(err, EOFError):
        return "unexpected end of file"
    text = " ".join(str(err).split())
    first = text.split(". ")[0][:160]
    if isinstance(err, (KeyError, IndexError, TypeError)) or not first:
        return f"{type(err).__name__}: {first}" if first else type(err).__name__
    return first


def torch_load_weights_only(path: str | os.PathLike, what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, every failure one CheckpointError.

    A pickled class or function is "refused" (no code runs); anything else that stops the load
    is reported as a corrupt or non-PyTorch file, with torch's first line as the reason.
    """
    import torch

    try:
        with warnings.catch_warnings():  # e.g. torch's note on an unusual pickle protocol
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if is_pickled_object_refusal(err):
            raise CheckpointError(
                f"{path}: refused to load: it holds pickled objects other than tensors "
                f"({unpickling_reason(err)})"
            ) from None
        raise CheckpointError(_corrupt_message(path, what, err)) from None
    except MemoryError:
        raise CheckpointError(f"{path}: {what} is too large to load into memory") from None
    except (IsADirectoryError, PermissionError, FileNotFoundError) as err:
        raise CheckpointError(f"cannot read {path}: {err.strerror or err}") from None
    except Exception as err:  # noqa: BLE001 - torch raises many types for damaged files
        raise CheckpointError(_corrupt_message(path, what, err)) from None


def _corrupt_message(path: str | os.PathLike, what: str, err: BaseException) -> str:
    # a damaged training state is skipped for an older one by the caller: no advice here
    advice = "" if what == "training state" else "; download or export it again"
    return f"{path}: corrupt or not a PyTorch {what} ({load_error_reason(err)}){advice}"
