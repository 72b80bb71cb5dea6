"""Run-folder rules: one writer at a time, and what a new run may find in its folder.

**Lock.** A process that writes a run folder holds an exclusive ``fcntl.flock`` on
``RUN/.facd.lock`` (the file holds the writer's pid). The operating system releases it when the
process ends, however it ends, so a crash never leaves a stale lock; the file itself is deleted
on a clean exit. ``facd train --nproc K`` takes the lock in the launcher, which outlives its
ranks, and tells them so through the environment (:data:`LAUNCHER_ENV`): the ranks do not lock.
On Windows, which has no ``fcntl``, ``msvcrt.locking`` on the same file is used; where neither
exists the run is not locked. The file is opened without following a symbolic link, and a link
or a FIFO at its name is refused with one line (:class:`facd.fileio.LockFile`).

**What a run folder may hold.** facd writes these names in a run folder (:func:`facd_entries`)::

    config.yaml  metrics.jsonl  last.safetensors  best.safetensors  pisr_encoder.safetensors
    checkpoints/state-NNNNNNNN.pt[.unreadable]  checkpoints/latest.json  tb/events.out.tfevents.*
    .facd.lock  .<name>.facd-XXXXXXXX.tmp (an atomic write cut short by a crash)

A new run (neither ``--resume`` nor ``--overwrite``) starts only in a missing or empty folder, or
in the leftovers of a run that stopped before its first checkpoint (``config.yaml``,
``metrics.jsonl``, ``tb/``, an empty ``checkpoints/``, the lock and temporary files). Anything
else (weights, a training state, any file facd does not write) is refused with one line naming
the folder and what is in it. ``--resume`` keeps every file facd does not write as it is.

``--overwrite`` starts a new run in the folder and first deletes the files of the earlier run that
facd wrote, exactly the names listed above (:func:`clear_earlier_run`); every other file and
folder (a user's notes, ``eval.json``, another tool's logs) is kept as it is. Before deleting
anything it checks that every name the new run writes can be written (``config.yaml`` is not a
folder, ``checkpoints/`` and ``tb/`` are not symbolic links out of the run folder), and no
deletion passes through a symbolic link.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from facd.errors import ConfigError, FacdError, RunDirBusy
from facd.fileio import (
    LockFile,
    check_replaceable,
    is_facd_temp,
    remove_empty_dir,
    remove_under,
    write_error,
)

LOCK_NAME = ".facd.lock"
# Set by ``facd train --nproc K`` for its ranks: "<launcher pid>:<absolute run folder>".
LAUNCHER_ENV = "FACD_LAUNCHER"

TOP_FILES = ("config.yaml", "metrics.jsonl")  # leftovers of a run that never saved
WEIGHTS = ("last.safetensors", "best.safetensors", "pisr_encoder.safetensors")
STATE_DIR = "checkpoints"
TB_DIR = "tb"
_STATE_RE = re.compile(r"state-\d+\.pt(\.unreadable)?|latest\.json")
_TB_RE = re.compile(r"events\.out\.tfevents\..+")
# temporary names of facd versions before the ``.facd-`` mark (only for facd's own file names)
_LEGACY_TEMP_RE = re.compile(
    r"\.(config\.yaml|metrics\.jsonl|last\.safetensors|best\.safetensors|"
    r"pisr_encoder\.safetensors|latest\.json|state-\d+\.pt)\.[a-z0-9_]{8}\.tmp"
)


def is_run_temp(name: str) -> bool:
    """A temporary file that facd's atomic writer leaves in a run folder when a crash stops it."""
    return is_facd_temp(name) or _LEGACY_TEMP_RE.fullmatch(name) is not None


# ------------------------------------------------------------------------------------ lock


class RunLock:
    """An exclusive, non-blocking lock on a run folder (see the module docstring).

    The lock file is a :class:`facd.fileio.LockFile`: a symbolic link or a FIFO planted at
    ``RUN/.facd.lock`` is refused with one line, never followed or blocked on.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._lock: LockFile | None = None
        self._created_dir = False

    def acquire(self) -> RunLock:
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise ConfigError(f"--out {self.run_dir} exists and is not a folder")
        if not self.run_dir.exists():
            try:
                self.run_dir.mkdir(parents=True)
                self._created_dir = True
            except FileExistsError:
                pass
            except OSError as err:
                raise write_error(self.run_dir, err) from None
        lock = LockFile(self.path)
        if not lock.acquire():
            who = f"pid {lock.holder}" if lock.holder else "another process"
            raise RunDirBusy(
                f"{self.run_dir} is being written by another facd train ({who}); wait for "
                "it to finish or stop it, or choose another --out"
            )
        self._lock = lock
        return self

    def release(self) -> None:
        """Delete the lock file (and the folder if this lock created it and it stayed empty)."""
        if self._lock is None:
            return
        self._lock.release()
        self._lock = None
        if self._created_dir:
            remove_empty_dir(self.run_dir)  # a refused run leaves nothing behind

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()


def lock_run_dir(run_dir: Path) -> RunLock | None:
    """Lock ``run_dir`` for this process; None when the ``facd train`` launcher holds it."""
    if launcher_holds(run_dir):
        return None
    return RunLock(run_dir).acquire()


def launcher_env(run_dir: Path) -> dict[str, str]:
    """Environment for the ranks of a launcher that holds the lock on ``run_dir``."""
    return {LAUNCHER_ENV: f"{os.getpid()}:{Path(run_dir).resolve()}"}


def launcher_pid() -> int | None:
    """The pid of the ``facd train --nproc`` launcher that started this rank, if any."""
    raw = os.environ.get(LAUNCHER_ENV, "")
    pid, _, _ = raw.partition(":")
    return int(pid) if pid.isdigit() else None


def launcher_holds(run_dir: Path) -> bool:
    """Whether this process is a rank of a launcher that holds the lock on ``run_dir``."""
    raw = os.environ.get(LAUNCHER_ENV, "")
    pid, _, folder = raw.partition(":")
    if not pid.isdigit() or folder != str(Path(run_dir).resolve()):
        return False
    return _alive(int(pid))


def _alive(pid: int) -> bool:
    if sys.platform == "win32":
        return True  # os.kill(pid, 0) would terminate it there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------------ process lifetime


def die_with_parent() -> None:
    """A ``preexec_fn``: the child gets SIGKILL when the process that started it dies (Linux).

    Elsewhere it does nothing; the ranks of ``facd train --nproc`` also watch the launcher
    themselves (:func:`watch_launcher`).
    """
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def watch_launcher(on_gone: Callable[[], None] | None = None, interval: float = 0.2) -> bool:
    """In a rank of ``facd train --nproc``: end this process as soon as the launcher or the
    process that started it (torchrun) is gone. Returns whether a watchdog was started.

    torchrun starts every rank in a session of its own, so neither a signal to the launcher's
    process group nor a parent-death signal of the launcher reaches it; a daemon thread polls
    both pids instead (SIGKILL: an orphan must not write another byte). Not on Windows.
    """
    pid = launcher_pid()
    if pid is None or sys.platform == "win32":
        return False
    parent = os.getppid()
    kill = on_gone or (lambda: os.kill(os.getpid(), signal.SIGKILL))

    def loop() -> None:
        stop = threading.Event()
        while not stop.wait(interval):
            if not _alive(pid) or os.getppid() != parent:
                kill()
                return

    if not _alive(pid):
        kill()
        return True
    threading.Thread(target=loop, name="facd-launcher-watchdog", daemon=True).start()
    return True


# ------------------------------------------------------------------------- folder contents


def facd_entries(run_dir: Path) -> tuple[list[str], list[str], list[str]]:
    """Classify what ``run_dir`` holds: (outputs of an earlier run, leftovers of a run that
    never saved, entries facd does not write), as paths relative to ``run_dir``."""
    outputs: list[str] = []
    leftovers: list[str] = []
    foreign: list[str] = []
    if not run_dir.is_dir():
        return outputs, leftovers, foreign
    for p in sorted(run_dir.iterdir()):
        name = p.name
        if (name in (LOCK_NAME, *TOP_FILES) or is_run_temp(name)) and p.is_file():
            leftovers.append(name)
        elif name in WEIGHTS and p.is_file():
            outputs.append(name)
        elif name in (STATE_DIR, TB_DIR) and p.is_dir():
            pattern = _STATE_RE if name == STATE_DIR else _TB_RE
            for q in sorted(p.iterdir()):
                rel = f"{name}/{q.name}"
                if is_run_temp(q.name) and q.is_file():
                    leftovers.append(rel)
                elif pattern.fullmatch(q.name) and q.is_file():
                    (outputs if name == STATE_DIR else leftovers).append(rel)
                else:
                    foreign.append(rel)
        else:
            foreign.append(name + ("/" if p.is_dir() else ""))
    return outputs, leftovers, foreign


def _names(items: list[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check_run_dir(run_dir: Path, resume: bool, overwrite: bool, has_state: bool) -> None:
    """Refuse a run that would overwrite an earlier run's results or mix with other files."""
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other; pass one of them")
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir} exists and is not a folder")
    if overwrite or not run_dir.is_dir():
        return
    outputs, _leftovers, foreign = facd_entries(run_dir)
    if resume:
        weights = [n for n in outputs if n in WEIGHTS]
        if not has_state and weights:
            raise ConfigError(
                f"--resume: {run_dir} holds {_names(weights)} but no training state to continue "
                "from; pass --overwrite to start a new run there (replacing facd's files, other "
                "files are kept), or choose another --out"
            )
        return
    if has_state:
        raise ConfigError(
            f"{run_dir} already holds a training state; pass --resume to continue it, "
            "--overwrite to start again, or choose another --out"
        )
    if outputs or foreign:
        what = []
        if outputs:
            what.append(f"results of an earlier run ({_names(outputs)})")
        if foreign:
            what.append(f"files facd did not write ({_names(foreign)})")
        raise ConfigError(
            f"{run_dir} is not empty: it holds {' and '.join(what)}; pass --resume to continue "
            "a run there, --overwrite to start a new one (replacing facd's files, other files "
            "are kept), or choose another --out"
        )


def clear_earlier_run(run_dir: Path) -> list[str]:
    """For ``--overwrite``: delete the files an earlier run wrote (the names in the module
    docstring, never anything else); returns them, relative to ``run_dir``.

    Every name the new run writes is checked first (:func:`facd.fileio.check_replaceable`): a
    ``config.yaml`` that is a folder, or a ``checkpoints/`` or ``tb/`` that is a symbolic link
    out of the run folder, stops it with one line before anything is deleted. Files are deleted
    with :func:`facd.fileio.remove_under`, which never passes through a link.
    """
    check_replaceable(
        run_dir,
        files=(*TOP_FILES, *WEIGHTS),
        folders=(STATE_DIR, TB_DIR),
        advice="--overwrite deleted nothing; move it away, or choose another --out",
    )
    outputs, leftovers, _foreign = facd_entries(run_dir)
    removed = []
    for rel in outputs + leftovers:
        if rel != LOCK_NAME and remove_under(run_dir, rel):  # the lock is ours
            removed.append(rel)
    return removed


def remove_stale_temps(run_dir: Path) -> int:
    """Delete the temporary files of facd's atomic writes that a crash left behind (only those:
    a user's ``.notes.tmp`` is kept, and nothing behind a symbolic link); returns their count.
    Call it with the run folder locked, or it could delete the temporary file of a write in
    progress."""
    count = 0
    for sub in ("", STATE_DIR):
        folder = run_dir / sub
        if (sub and folder.is_symlink()) or not folder.is_dir():
            continue
        for p in folder.iterdir():
            if is_run_temp(p.name) and p.is_file() and not p.is_symlink():
                with contextlib.suppress(FacdError):  # e.g. deleted meanwhile, read-only
                    count += remove_under(run_dir, f"{sub}/{p.name}" if sub else p.name)
    return count


# Keys that may change between a run and its resumption.
RESUMABLE_CHANGES = (
    "train.iterations",
    "train.log_every",
    "train.save_every",
    "train.device",
    "train.keep_checkpoints",
    "train.nan_policy",
    "train.max_skips",
    "train.compile",
    "train.channels_last",
    "data.num_workers",
    "val.",
)


def check_resumable(saved: Path, new: dict) -> None:
    """Refuse to resume with a config that differs from the saved one beyond RESUMABLE_CHANGES."""
    import yaml

    try:
        old = yaml.safe_load(saved.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        old = None
    if not isinstance(old, dict):
        raise ConfigError(
            f"{saved} is damaged; restore it (or delete it to skip the check that the "
            "resumed config matches)"
        )
    diffs = [k for k in _diff(old, new) if not k.startswith(RESUMABLE_CHANGES)]
    if diffs:
        raise ConfigError(
            f"--resume with a config that differs from {saved} in {', '.join(diffs[:5])}; "
            f"only {', '.join(k.rstrip('.') for k in RESUMABLE_CHANGES)} may change"
        )


def _diff(a: object, b: object, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]
