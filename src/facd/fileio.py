"""Every file facd writes, deletes or locks goes through this module; it also reads PyTorch
files without unpickling code.

The rules it keeps, for every command and for the reproduction layer alike:

* **Atomic writes.** A file is written to a temporary name in its own folder
  (``.<name>.facd-<8 random characters>.tmp``), fsynced and renamed over the target
  (:func:`atomic_path`, :func:`atomic_write_bytes`, :func:`atomic_write_text`,
  :func:`copy_file`). A crash leaves the old file or the new one, never a partial file; a failed
  write deletes its temporary file and leaves the target as it was.
* **One-line failures.** An ``OSError`` while writing, moving or deleting becomes a
  :class:`~facd.errors.StorageError` (exit 4), ``cannot write PATH: REASON`` (e.g. ``No space
  left on device``). A name the file system cannot hold (``ENAMETOOLONG``) is a
  :class:`~facd.errors.FacdError` (exit 2): :func:`check_name_length` says so before any work.
* **Temporary names fit.** The temporary name adds 19 characters; when that would pass the
  file system's limit on a name (255 bytes on most), it keeps the start of the name and an
  8-character hash of the whole instead, so every name the file system accepts can be written.
* **Outputs are never inputs.** :func:`refuse_overwriting_inputs` refuses, before anything is
  written, an output path that resolves (symbolic links, ``..``, hard links) to an input.
* **Links are not followed out of a folder.** :func:`remove_under` deletes a file below a
  folder without passing through a symbolic link; :func:`check_replaceable` refuses, before
  anything is deleted, a folder facd would write into that is a link (or a file where a file
  is needed that is a folder); :class:`LockFile` opens its file with ``O_NOFOLLOW`` and refuses
  anything but a regular file.

Serialisers (PIL, ``torch.save``, ONNX) write into memory (``io.BytesIO``) and hand the bytes
to :func:`atomic_write_bytes`; appended logs are opened with :func:`open_append`. Creating
folders is not a file write and needs no helper. TensorBoard's event files are written by
tensorboardX itself (``facd.train.logger`` turns their failures into the same one line).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import pickle
import re
import shutil
import stat
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from facd.errors import CheckpointError, FacdError, StorageError

__all__ = [
    "LockFile",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_name_length",
    "check_replaceable",
    "copy_file",
    "copy_tree",
    "is_facd_temp",
    "move",
    "open_append",
    "refuse_overwriting_inputs",
    "remove_empty_dir",
    "remove_file",
    "remove_tree",
    "remove_under",
    "storage_errors",
    "torch_load_weights_only",
    "write_error",
]

# Temporary files of atomic writes are named ``.<name>.facd-<8 random chars>.tmp`` (mkstemp adds
# the 8 characters), so that a clean-up after a crash can tell them from a user's own files.
TEMP_PREFIX_MARK = ".facd-"
TEMP_SUFFIX = ".tmp"
TEMP_RE = re.compile(r"\..+\.facd-[a-z0-9_]{8}\.tmp")
_RANDOM_CHARS = 8  # what mkstemp inserts between prefix and suffix
NAME_MAX = 255  # bytes in one name, where the file system does not say (ext4, xfs, btrfs, tmpfs)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def is_facd_temp(name: str) -> bool:
    """Whether a file name is a temporary file of :func:`atomic_path` (left by a crash)."""
    return TEMP_RE.fullmatch(name) is not None


# ------------------------------------------------------------------------------ errors


def _reason(err: OSError) -> str:
    return err.strerror or str(err) or type(err).__name__


def _short(name: str, keep: int = 24) -> str:
    return name if len(name) <= 2 * keep + 1 else f"{name[:keep]}...{name[-keep:]}"


@contextlib.contextmanager
def _errors(path: str | os.PathLike[str], verb: str = "write") -> Iterator[None]:
    """An ``OSError`` inside becomes one line: exit 2 for a too-long name, else exit 4."""
    try:
        yield
    except OSError as err:
        raise write_error(path, err, verb) from None


def write_error(path: str | os.PathLike[str], err: OSError, verb: str = "write") -> FacdError:
    """The one-line error for ``err`` while writing ``path``: a too-long name is a
    :class:`~facd.errors.FacdError` (exit 2), anything else a
    :class:`~facd.errors.StorageError` (exit 4)."""
    if err.errno == errno.ENAMETOOLONG:
        return FacdError(
            f"cannot {verb} {_short(os.fspath(path), 40)}: file name too long for the "
            "file system; choose a shorter name"
        )
    return StorageError(f"cannot {verb} {os.fspath(path)}: {_reason(err)}")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, as hex, read 1 MiB at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------ names


@contextlib.contextmanager
def storage_errors(path: Path, note: str = "") -> Iterator[None]:
    """Turn an ``OSError`` while writing ``path`` into a one-line :class:`StorageError`
    (and add ``note`` to the one :mod:`facd.fileio` raised)."""
    try:
        yield
    except StorageError as err:
        raise StorageError(f"{err}{note}") from None
    except OSError as err:
        reason = err.strerror or str(err) or type(err).__name__
        raise StorageError(f"cannot write {path}: {reason}{note}") from None


def _name_max(folder: Path) -> int:
    """The longest name (in bytes) the file system of ``folder`` (or its nearest existing
    ancestor) accepts."""
    for candidate in (folder, *folder.parents):
        if candidate.is_dir():
            with contextlib.suppress(OSError, ValueError, AttributeError):
                return int(os.pathconf(candidate, "PC_NAME_MAX"))
            break
    return NAME_MAX


def check_name_length(path: str | os.PathLike[str], flag: str) -> Path:
    """Raise a one-line :class:`~facd.errors.FacdError` (exit 2) if a name in ``path`` is
    longer than its file system accepts; returns ``path``. ``flag`` names the option."""
    path = Path(path)
    limit = _name_max(path.parent if path.name else path)
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > limit:
            raise FacdError(
                f"{flag} {_short(os.fspath(path), 40)}: the name {_short(part, 12)!r} is {size} "
                f"bytes long, more than the {limit} the file system allows; choose a shorter name"
            )
    return path


def _temp_prefix(path: Path) -> str:
    """``.<name>.facd-`` or, when the temporary name would be too long, ``.<start>~<hash>.facd-``."""
    full = f".{path.name}{TEMP_PREFIX_MARK}"
    limit = _name_max(path.parent)
    fixed = len(TEMP_PREFIX_MARK) + _RANDOM_CHARS + len(TEMP_SUFFIX)
    if len(os.fsencode(full)) + _RANDOM_CHARS + len(TEMP_SUFFIX) <= limit:
        return full
    digest = hashlib.sha256(os.fsencode(path.name)).hexdigest()[:8]
    room = max(0, limit - fixed - len(digest) - 2)  # the leading "." and the "~"
    start = os.fsencode(path.name)[:room].decode("utf-8", errors="ignore")
    return f".{start}~{digest}{TEMP_PREFIX_MARK}"


# ------------------------------------------------------------------------------ writes


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path; on success it is fsynced and renamed over ``path``.

    A crash at any point leaves either the old file or the new one, never a partial file. An
    ``OSError`` (raised by the writer in the ``with`` block too) becomes a one-line
    :class:`~facd.errors.StorageError` after the temporary file is deleted.
    """
    path = Path(path)
    with _errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        with _errors(path):
            yield tmp_path
            os.chmod(tmp_path, _default_mode())  # mkstemp creates 0600; use the usual umask
            with open(tmp_path, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    finally:
        with contextlib.suppress(OSError):
            tmp_path.unlink()  # gone after the rename; only a failed write leaves it


def _write_all(f: IO[bytes], data: bytes) -> None:
    """The one place where file contents are written (tests make it fail like a full disk)."""
    f.write(data)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        _write_all(f, data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def copy_file(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Copy ``src`` to ``dst`` atomically (``dst`` is complete or untouched)."""
    with open(src, "rb") as fin, atomic_path(dst) as tmp, open(tmp, "wb") as fout:
        shutil.copyfileobj(fin, fout)


def write_stream(path: str | os.PathLike[str], src: IO[bytes], chunk: int = 1 << 20) -> None:
    """Copy the readable binary stream ``src`` to ``path`` atomically, ``chunk`` bytes at a
    time (an archive member, a download)."""
    with _errors(path), atomic_path(path) as tmp, open(tmp, "wb") as f:
        while block := src.read(chunk):
            _write_all(f, block)


def open_binary(path: str | os.PathLike[str], append: bool) -> IO[bytes]:
    """Open a binary file that is written piece by piece (a resumable download's ``.part``):
    appended to, or emptied first. Not atomic: the caller keeps what was written so far. A
    failure to open is one line; the caller closes the file."""
    path = Path(path)
    with _errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "ab" if append else "wb")  # noqa: SIM115 - the caller closes it


def open_append(path: str | os.PathLike[str]) -> IO[str]:
    """Open a UTF-8 log for appending (its folder created); a failure is one line."""
    path = Path(path)
    with _errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a", encoding="utf-8")  # noqa: SIM115 - the caller closes it


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


# ------------------------------------------------------------------- outputs vs inputs


def _identity(path: Path) -> tuple[str, tuple[int, int] | None]:
    """The resolved path and, for an existing file, its (device, inode)."""
    try:
        st = os.stat(path)
        fid: tuple[int, int] | None = (st.st_dev, st.st_ino)
    except (OSError, ValueError):
        fid = None
    return os.path.realpath(path), fid


def refuse_overwriting_inputs(
    outputs: Iterable[tuple[str, str | os.PathLike[str]]],
    inputs: Iterable[str | os.PathLike[str]],
    advice: str = "choose another output name",
) -> None:
    """Raise a one-line :class:`~facd.errors.FacdError` (exit 2) if an output is an input.

    ``outputs`` are ``(label, path)`` pairs, ``label`` naming the output in the message
    (``"--json results.json"``); ``inputs`` are the files the command reads. Paths are compared
    after resolving symbolic links and ``.``/``..`` (``os.path.realpath``), and existing files
    also by device and inode, so that a hard link counts too. Call it before anything is
    written; ``advice`` ends the message.
    """
    by_path: dict[str, Path] = {}
    by_id: dict[tuple[int, int], Path] = {}
    for item in inputs:
        p = Path(item)
        real, fid = _identity(p)
        by_path.setdefault(real, p)
        if fid is not None:
            by_id.setdefault(fid, p)
    for label, out in outputs:
        real, fid = _identity(Path(out))
        clash = by_path.get(real) or (by_id.get(fid) if fid is not None else None)
        if clash is not None:
            which = "an input" if os.fspath(clash) == os.fspath(out) else f"the input {clash}"
            raise FacdError(
                f"{label} is also {which}, which writing it would destroy; nothing was "
                f"written; {advice}"
            )


# ------------------------------------------------------------------- deleting and moving


def remove_file(path: str | os.PathLike[str], missing_ok: bool = True) -> bool:
    """Delete a file (a symbolic link itself, never its target); whether one was deleted."""
    with _errors(path, "delete"):
        try:
            os.unlink(path)
        except FileNotFoundError:
            if not missing_ok:
                raise
            return False
    return True


def remove_empty_dir(path: str | os.PathLike[str]) -> bool:
    """Delete ``path`` if it is an empty folder (not a link); whether it was deleted."""
    if os.path.islink(path):
        return False
    try:
        os.rmdir(path)
    except OSError:
        return False
    return True


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Delete a folder and everything in it. A symbolic link is deleted itself: nothing is
    deleted through it (shutil.rmtree does not follow the links inside either)."""
    with _errors(path, "delete"):
        if os.path.islink(path):
            os.unlink(path)
        elif os.path.lexists(path):
            shutil.rmtree(path)


def _nofollow_dir_fd() -> bool:
    return bool(_O_NOFOLLOW and _O_DIRECTORY) and os.unlink in os.supports_dir_fd


def remove_under(root: str | os.PathLike[str], rel: str | os.PathLike[str]) -> bool:
    """Delete the file ``root/rel`` without passing through a symbolic link below ``root``.

    Each folder between ``root`` and the file is opened with ``O_NOFOLLOW``, and the file is
    unlinked relative to its folder, so a link swapped in at any moment cannot redirect the
    deletion. A link on the way raises a one-line :class:`~facd.errors.FacdError`; a missing
    file returns False.
    """
    root, parts = Path(root), Path(rel).parts
    target = root / Path(rel)
    if not parts or ".." in parts or Path(rel).is_absolute():
        raise ValueError(f"not a path below {root}: {rel}")
    if not _nofollow_dir_fd():  # no dir_fd support: check each folder, then delete by path
        for i in range(1, len(parts)):
            if os.path.islink(root.joinpath(*parts[:i])):
                raise _link_refusal(root.joinpath(*parts[:i]), "delete", target)
        return remove_file(target)
    with _errors(target, "delete"):
        fd = os.open(root, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
        try:
            for i, part in enumerate(parts[:-1], start=1):
                try:
                    nxt = os.open(
                        part, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=fd
                    )
                except FileNotFoundError:
                    return False
                except OSError as err:
                    if err.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(
                        root.joinpath(*parts[:i])
                    ):
                        raise _link_refusal(root.joinpath(*parts[:i]), "delete", target) from None
                    raise
                os.close(fd)
                fd = nxt
            try:
                os.unlink(parts[-1], dir_fd=fd)
            except FileNotFoundError:
                return False
        finally:
            os.close(fd)
    return True


def _link_refusal(link: Path, verb: str, target: Path) -> FacdError:
    return FacdError(
        f"{link} is a symbolic link (to {os.readlink(link)}); facd does not {verb} {target.name} "
        "through it, outside the folder it owns"
    )


def check_replaceable(
    root: str | os.PathLike[str], files: Iterable[str], folders: Iterable[str], advice: str
) -> None:
    """Raise a one-line :class:`~facd.errors.FacdError` (exit 2) unless facd can write each of
    ``files`` and each file inside ``folders`` below ``root``.

    Meant to run before anything is deleted (``--overwrite``): a file name that is a folder,
    a folder name that is a file, and a folder that is a symbolic link (writing or deleting
    through it would act outside ``root``) are refused; ``advice`` ends the message.
    """
    root = Path(root)
    for name in files:
        p = root / name
        if os.path.isdir(p) and not os.path.islink(p):
            raise FacdError(f"{p} is a folder, but facd writes a file there; {advice}")
        if os.path.lexists(p) and not os.path.islink(p) and not p.is_file():
            raise FacdError(f"{p} is not a regular file, but facd writes one there; {advice}")
    for name in folders:
        p = root / name
        if os.path.islink(p):
            raise FacdError(
                f"{p} is a symbolic link (to {os.readlink(p)}); facd does not write or delete "
                f"through links out of {root}; {advice}"
            )
        if os.path.lexists(p) and not p.is_dir():
            raise FacdError(f"{p} is a file, but facd writes a folder there; {advice}")


def move(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Rename ``src`` to ``dst`` (a file replaces ``dst``; within one file system)."""
    with _errors(dst, f"move {os.fspath(src)} to"):
        os.replace(src, dst)


def copy_tree(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], skip: Iterable[str] = ()
) -> None:
    """Copy the folder ``src`` to the new folder ``dst``, leaving out the names in ``skip``."""
    with _errors(dst):
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*skip))


# ------------------------------------------------------------------------------ locks


class LockFile:
    """An exclusive, non-blocking lock on ``path``, a regular file holding the owner's pid.

    The file is opened with ``O_NOFOLLOW``: a symbolic link planted at ``path`` is refused (the
    pid would otherwise be written into its target), and so is anything but a regular file (a
    FIFO, a folder), each with one line. The lock is ``fcntl.flock``; on Windows
    ``msvcrt.locking``; where neither exists, none is taken. The operating system releases it
    when the process ends, however it ends.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.holder: int | None = None  # the pid in the file when another process holds it
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock and write this process's pid; False if another process holds it."""
        while True:
            fd = self._open()
            if not _try_lock(fd):
                self.holder = _read_pid(fd)
                os.close(fd)
                return False
            # the holder before us may have deleted the file after we opened it: lock the file
            # that is at the path now, else two writers could each hold "the" lock
            try:
                same = os.fstat(fd).st_ino == os.lstat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        with _errors(self.path):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as err:
            if os.path.islink(self.path):
                raise FacdError(
                    f"{self.path} is a symbolic link (to {os.readlink(self.path)}); facd does "
                    "not follow it for its lock file; delete the link"
                ) from None
            if err.errno in (errno.EISDIR, errno.ENXIO, errno.ENODEV):
                raise _not_regular(self.path) from None
            raise write_error(self.path, err) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise _not_regular(self.path)
        return fd

    def release(self) -> None:
        """Delete the file, then release the lock (closing the file releases it)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None


def _not_regular(path: Path) -> FacdError:
    try:
        mode = os.lstat(path).st_mode
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode) else ""
    except OSError:
        kind = ""
    what = kind or "not a regular file"
    return FacdError(f"{path} is {what}, not a lock file facd can use; delete it")


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        try:
            import msvcrt
        except ImportError:
            return True  # no locking available: documented
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a file system without flock support (some network mounts)
        return True
    return True


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return int(os.read(fd, 32).decode().strip())
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------ reading


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
