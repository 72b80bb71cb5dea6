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

    config.yaml  metrics.jsonl  last.safetensors  best.safetensors  (and the files loss terms
    declare, e.g. PISR's pisr_encoder.safetensors: weight_files())
    checkpoints/state-NNNNNNNN.pt[.unreadable]  checkpoints/latest.json  tb/events.out.tfevents.*
    .facd.lock  .<name>.facd-XXXXXXXX.tmp (an atomic write cut short by a crash)
    .facd-run.json (the manifest: facd's mark on the folder, see facd.train.manifest)

**Whose folder it is.** A folder is facd's only if it holds a manifest naming the files facd
wrote there, or, for runs from before manifests, a training state (adopted: ``--resume`` needs
its ``config.yaml`` to match; the manifest is then written, :func:`begin_run`). A folder that is
not empty and is neither is refused in every mode, naming what it holds: nothing of a user's is
continued, replaced or deleted. An empty or missing folder takes any mode (``--resume`` starts
afresh there, as job scripts rely on). The CONFIG given may not be the folder's own
``config.yaml`` (:func:`check_config_not_in_run`). In every mode ``--out`` may not be a dangling
symbolic link, the root folder or the home folder (:func:`check_out_folder`), and
``checkpoints/`` and ``tb/`` may not be symbolic links (:func:`check_no_linked_folders`):
nothing is written through them.

A new run (neither ``--resume`` nor ``--overwrite``) starts only in a missing or empty folder, or
in the leftovers of a run of facd's that stopped before its first checkpoint (``config.yaml``,
``metrics.jsonl``, ``tb/``, an empty ``checkpoints/``, the lock and temporary files). Anything
else (weights, a training state, any file the manifest does not name) is refused with one line
naming the folder and what is in it. ``--resume`` keeps every file facd did not write as it is,
and checks that the training inputs are those the manifest recorded
(:func:`check_inputs_unchanged`).

``--overwrite`` starts a new run in the folder and first deletes the files of the earlier run that
facd wrote, exactly those its manifest names (:func:`owned_files`, :func:`clear_earlier_run`);
every other file and folder (a user's notes, ``eval.json``, another tool's logs) is kept as it
is. Before deleting anything it checks that every name the new run writes can be written
(``config.yaml`` is not a folder, ``checkpoints/`` and ``tb/`` are not symbolic links out of the
run folder), and no deletion passes through a symbolic link. A ``checkpoints/state-*.pt`` the
manifest does not name stops ``--resume`` and ``--overwrite``: a resumed run would take it up.
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
from typing import Any

from facd.errors import ConfigError, FacdError, RunDirBusy
from facd.fileio import (
    LockFile,
    check_replaceable,
    is_facd_temp,
    remove_empty_dir,
    remove_under,
    write_error,
)
from facd.train.manifest import (
    MANIFEST_NAME,
    claim_files,
    input_changes,
    new_manifest,
    read_manifest,
    training_inputs,
    write_manifest,
)

LOCK_NAME = ".facd.lock"
# Set by ``facd train --nproc K`` for its ranks: "<launcher pid>:<absolute run folder>".
LAUNCHER_ENV = "FACD_LAUNCHER"

TOP_FILES = ("config.yaml", "metrics.jsonl")  # leftovers of a run that never saved
STUDENT_WEIGHTS = ("last.safetensors", "best.safetensors")
STATE_DIR = "checkpoints"
TB_DIR = "tb"
_STATE_RE = re.compile(r"state-\d+\.pt(\.unreadable)?|latest\.json")
_TB_RE = re.compile(r"events\.out\.tfevents\..+")
# temporary names of facd versions before the ``.facd-`` mark (only for facd's own file names)
_LEGACY_TEMP_RE = re.compile(
    r"\.(config\.yaml|metrics\.jsonl|last\.safetensors|best\.safetensors|"
    r"pisr_encoder\.safetensors|latest\.json|state-\d+\.pt)\.[a-z0-9_]{8}\.tmp"
)


def weight_files() -> tuple[str, ...]:
    """The weights files of a run folder: the student's, and those the declared loss terms
    write beside each checkpoint (:attr:`facd.distill.terms.TermSpec.outputs`)."""
    from facd.distill.methods import term_outputs

    return (*STUDENT_WEIGHTS, *term_outputs())


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
        check_out_folder(self.run_dir)
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


def watch_launcher(
    on_gone: Callable[[], None] | None = None, interval: float = 0.2
) -> Callable[[], None] | None:
    """In a rank of ``facd train --nproc``: end this process as soon as the launcher or the
    process that started it (torchrun) is gone. Returns a function that stops the watchdog
    and waits for its thread to end, or None when no watchdog was started.

    torchrun starts every rank in a session of its own, so neither a signal to the launcher's
    process group nor a parent-death signal of the launcher reaches it; a daemon thread polls
    both pids instead (SIGKILL: an orphan must not write another byte). Not on Windows. A rank
    that finished stops it before it exits (:func:`facd.train.distributed.end_launched_rank`),
    so that no thread of facd's is running while the process ends.
    """
    pid = launcher_pid()
    if pid is None or sys.platform == "win32":
        return None
    parent = os.getppid()
    kill = on_gone or (lambda: os.kill(os.getpid(), signal.SIGKILL))
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            if not _alive(pid) or os.getppid() != parent:
                kill()
                return

    if not _alive(pid):
        kill()
        return stop.set
    thread = threading.Thread(target=loop, name="facd-launcher-watchdog", daemon=True)
    thread.start()

    def stop_watching() -> None:
        stop.set()
        thread.join()

    return stop_watching


# ------------------------------------------------------------------------- folder contents


def check_out_folder(run_dir: Path) -> None:
    """Refuse an ``--out`` no run may be written into, whatever the mode: a dangling symbolic
    link (nothing could be created through it), the root folder or the home folder (a run
    writes ``config.yaml``, ``checkpoints/``, ``tb/`` and its weights directly into ``--out``)."""
    run_dir = Path(run_dir)
    if run_dir.is_symlink() and not run_dir.exists():
        raise ConfigError(
            f"--out {run_dir} is a dangling symbolic link (to {os.readlink(run_dir)}, which does "
            "not exist); create the folder it points to, or give another --out"
        )
    resolved = run_dir.resolve()
    if resolved == Path(resolved.anchor):
        _refuse_top_folder(run_dir, "the root folder")
    with contextlib.suppress(RuntimeError, KeyError):  # no home folder: nothing to compare
        if resolved == Path.home().resolve():
            _refuse_top_folder(run_dir, "your home folder")


def _refuse_top_folder(run_dir: Path, what: str) -> None:
    sub = f"{run_dir.as_posix().rstrip('/')}/runs/my-run"
    raise ConfigError(
        f"--out {run_dir} is {what}; a run writes config.yaml, checkpoints/, tb/ and its weights "
        f"directly into --out: give it a fresh sub-folder, e.g. --out {sub}"
    )


def check_no_linked_folders(run_dir: Path, overwrite: bool) -> None:
    """Refuse a ``checkpoints/`` or ``tb/`` that is a symbolic link (or a file) in every mode:
    a run would write its states and logs through the link, out of the run folder."""
    advice = (
        "--overwrite deleted nothing; move it away, or choose another --out"
        if overwrite
        else "nothing was written; replace the link by a real folder (move its files in), "
        "or choose another --out"
    )
    check_replaceable(run_dir, files=(), folders=(STATE_DIR, TB_DIR), advice=advice)


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
        if name == MANIFEST_NAME and p.is_file():
            continue  # facd's mark on the folder (facd.train.manifest)
        if (name in (LOCK_NAME, *TOP_FILES) or is_run_temp(name)) and p.is_file():
            leftovers.append(name)
        elif name in weight_files() and p.is_file():
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
    """Refuse a run that would overwrite an earlier run's results or a user's files.

    A folder is facd's when it holds a manifest (:mod:`facd.train.manifest`), or a training
    state of a facd version from before manifests (adopted: ``--resume`` needs its
    ``config.yaml``, which :func:`check_resumable` compares). Any other folder that is not empty
    is refused in every mode, so nothing of a user's is replaced, continued or deleted.
    """
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other; pass one of them")
    check_out_folder(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir} exists and is not a folder")
    if not run_dir.is_dir():
        return
    check_no_linked_folders(run_dir, overwrite)
    outputs, leftovers, foreign = facd_entries(run_dir)
    present = [n for n in outputs + leftovers + foreign if _user_visible(n)]
    if not present:
        return  # empty but for the lock and crash temporaries: any mode starts afresh
    manifest = read_manifest(run_dir)
    if manifest is None and not has_state:
        _refuse_unowned(run_dir, present, resume, overwrite)
    if manifest is not None:
        owned = set(manifest["files"])
        stray = [n for n in outputs if _is_state_file(n) and n not in owned]
        if stray and (resume or overwrite):
            raise ConfigError(
                f"{run_dir / stray[0]} is named like a training state but the run's "
                f"{MANIFEST_NAME} does not name it, so facd did not write it there; a resumed "
                f"run would take it up: move it out of {run_dir / STATE_DIR} first"
            )
        foreign += [n for n in outputs + leftovers if _user_visible(n) and n not in owned]
        outputs = [n for n in outputs if n in owned]
    elif resume and not (run_dir / "config.yaml").is_file():
        raise ConfigError(
            f"--resume: {run_dir} holds a training state but neither {MANIFEST_NAME} nor "
            "config.yaml, so it cannot be told to be this config's facd run; choose another "
            "--out, or restore its config.yaml"
        )
    if overwrite:
        return
    if resume:
        weights = [n for n in outputs if n in weight_files()]
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
            what.append(f"files facd did not write ({_names(sorted(foreign))})")
        raise ConfigError(
            f"{run_dir} is not empty: it holds {' and '.join(what)}; pass --resume to continue "
            "a run there, --overwrite to start a new one (replacing facd's files, other files "
            "are kept), or choose another --out"
        )


def _is_state_file(rel: str) -> bool:
    folder, _, name = rel.partition("/")
    return folder == STATE_DIR and re.fullmatch(r"state-\d+\.pt", name) is not None


def _user_visible(rel: str) -> bool:
    """Not the lock and not a temporary file of facd's (those never count as content)."""
    return rel != LOCK_NAME and not is_run_temp(Path(rel).name)


def _refuse_unowned(run_dir: Path, present: list[str], resume: bool, overwrite: bool) -> None:
    """A folder that is not empty and holds no facd run: refused in every mode."""
    held = f"it holds files facd did not write ({_names(sorted(present))})"
    if resume:
        raise ConfigError(
            f"--resume: {run_dir} holds no facd run to continue (no {MANIFEST_NAME}, no "
            f"training state); {held}; choose another --out"
        )
    if overwrite:
        raise ConfigError(
            f"--overwrite: {run_dir} holds no facd run (no {MANIFEST_NAME}, no training state), "
            f"so nothing there is facd's to replace; {held}; choose another --out"
        )
    raise ConfigError(
        f"{run_dir} is not empty and was not made by facd: {held}; choose another --out"
    )


def check_config_not_in_run(config: str | Path, run_dir: Path) -> None:
    """Refuse a CONFIG that is a file facd writes in ``run_dir`` (its ``config.yaml``)."""
    given = Path(config).resolve()
    if given == (run_dir / "config.yaml").resolve():
        raise ConfigError(
            f"CONFIG {config} is the config.yaml that facd train writes in --out {run_dir}; "
            f"copy it elsewhere first (e.g. cp {config} my-config.yaml) and pass the copy"
        )


def check_inputs_unchanged(run_dir: Path, rcfg: Any) -> None:
    """``--resume``: refuse when the training images or the teacher's weights changed since the
    run was started (the record in its manifest). A run without a record passes: it is
    recorded when it resumes (:func:`begin_run`)."""
    manifest = read_manifest(run_dir)
    old = manifest.get("inputs") if manifest is not None else None
    if not isinstance(old, dict):
        return
    changes = input_changes(old, training_inputs(rcfg))
    if changes:
        raise ConfigError(
            f"--resume: the training inputs changed since {run_dir} was started: "
            f"{'; '.join(changes)}; resuming would mix two trainings: restore them, or start "
            "a new run (--overwrite, or another --out)"
        )


def check_run(run_dir: Path, rcfg: Any, resume: bool, overwrite: bool) -> None:
    """Every check of a run folder before a run starts there: who owns it
    (:func:`check_run_dir`), and for a resumed state the config (:func:`check_resumable`) and
    the training inputs (:func:`check_inputs_unchanged`)."""
    from facd.train.state import has_state

    state = has_state(run_dir)
    check_run_dir(run_dir, resume, overwrite, state)
    saved = run_dir / "config.yaml"
    if resume and state and saved.is_file():  # without a state nothing is continued
        check_resumable(saved, rcfg.to_dict())
    if resume and state:
        check_inputs_unchanged(run_dir, rcfg)


def legacy_files(run_dir: Path) -> list[str]:
    """The files facd wrote in a run folder from before manifests, by their names."""
    outputs, leftovers, _foreign = facd_entries(run_dir)
    return [rel for rel in outputs + leftovers if _user_visible(rel)]


def owned_files(run_dir: Path) -> list[str]:
    """The files of an earlier run that ``--overwrite`` replaces: those its manifest names, or
    for a run from before manifests (a folder with a training state) facd's file names."""
    from facd.train.state import has_state

    manifest = read_manifest(run_dir)
    if manifest is None:
        return legacy_files(run_dir) if has_state(run_dir) else []
    return [rel for rel in manifest["files"] if (run_dir / rel).is_file()]


def begin_run(
    run_dir: Path, rcfg: Any, overwrite: bool, resumed: bool, claims: list[str]
) -> list[str]:
    """Rank 0, once the set-up succeeded and before anything else is written: with
    ``overwrite`` delete the earlier run's files (:func:`clear_earlier_run`), then write the
    manifest naming ``claims`` (with the files facd always writes) and the training inputs.

    A resumed run keeps its recorded inputs. A resumed run without a manifest (from before
    manifests) is adopted, and one without a record of its inputs gets one; each says so in one
    line. Returns the deleted files.
    """
    removed = clear_earlier_run(run_dir) if overwrite else []
    claims = [*TOP_FILES, *weight_files(), *claims]
    manifest = None if overwrite else read_manifest(run_dir)
    inputs = training_inputs(rcfg)
    if manifest is None:
        if resumed:
            print(
                f"note: {run_dir} is a facd run from before run manifests; adopted it "
                f"({MANIFEST_NAME} written) and recorded its training inputs as they are now",
                file=sys.stderr,
            )
        old = legacy_files(run_dir) if resumed else []
        write_manifest(run_dir, new_manifest([*old, *claims], inputs))
        return removed
    if resumed and isinstance(manifest.get("inputs"), dict):
        inputs = manifest["inputs"]
    elif resumed:
        print(
            f"note: {run_dir} has no record of its training inputs; recorded them as they are "
            "now (later resumes check them)",
            file=sys.stderr,
        )
    write_manifest(run_dir, new_manifest([*manifest["files"], *claims], inputs))
    return removed


def claim_logs(run_dir: Path, files: list[Path]) -> None:
    """Name the log files (``metrics.jsonl``, the TensorBoard event file) in the manifest."""
    claim_files(run_dir, [Path(f).relative_to(run_dir).as_posix() for f in files])


def clear_earlier_run(run_dir: Path) -> list[str]:
    """For ``--overwrite``: delete the files an earlier run wrote (:func:`owned_files`, never
    anything else); returns them, relative to ``run_dir``.

    Every name the new run writes is checked first (:func:`facd.fileio.check_replaceable`): a
    ``config.yaml`` that is a folder, or a ``checkpoints/`` or ``tb/`` that is a symbolic link
    out of the run folder, stops it with one line before anything is deleted. Files are deleted
    with :func:`facd.fileio.remove_under`, which never passes through a link.
    """
    check_replaceable(
        run_dir,
        files=(*TOP_FILES, *weight_files()),
        folders=(STATE_DIR, TB_DIR),
        advice="--overwrite deleted nothing; move it away, or choose another --out",
    )
    removed = []
    for rel in owned_files(run_dir):
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


def unresumable_differences(old: dict, new: dict) -> list[str]:
    """The dotted keys at which two resolved configs differ beyond RESUMABLE_CHANGES: a run
    saved with ``old`` cannot be resumed with ``new`` when this is not empty."""
    return [k for k in config_differences(old, new) if not k.startswith(RESUMABLE_CHANGES)]


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
    diffs = unresumable_differences(old, new)
    if diffs:
        raise ConfigError(
            f"--resume with a config that differs from {saved} in {', '.join(diffs[:5])}; "
            f"only {', '.join(k.rstrip('.') for k in RESUMABLE_CHANGES)} may change"
        )


def config_differences(a: object, b: object, prefix: str = "") -> list[str]:
    """The dotted keys at which two resolved configs differ. A key missing on one side counts
    as None, so that a config saved before an optional key (default None) was added equals
    today's resolution of the same file."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += config_differences(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]
