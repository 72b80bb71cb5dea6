"""The complete training state, written atomically and read back without unpickling code.

Layout of a run directory::

    config.yaml                 the resolved config
    last.safetensors            student weights of the latest checkpoint (facd format)
    best.safetensors            student weights with the best validation Y-PSNR
    checkpoints/state-NNNNNNNN.pt   optimizer, scheduler, scaler, loss modules, RNG, iteration
    checkpoints/latest.json     pointer to the newest complete state file
    metrics.jsonl, tb/          logs
    .facd.lock                  held by the process writing the run (see facd.train.rundir)
    .facd-run.json              the files facd wrote, and the training inputs (facd.train.manifest)

Each file is written to a temporary name, fsynced and renamed, and the pointer is updated only
after its state file is complete, so a crash at any moment leaves a loadable latest state.
On resume the newest state file that loads is used; the pointer is only a hint for other tools
(a crash between the state's rename and the pointer's update leaves it one state behind).
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facd.errors import CheckpointError, FacdError
from facd.errors import StorageError as StorageError  # the old import path still works
from facd.fileio import (
    atomic_write_bytes,
    atomic_write_text,
    move,
    remove_file,
    storage_errors,
    torch_load_weights_only,
)
from facd.train.manifest import claim_files

STATE_DIR = "checkpoints"
POINTER = "latest.json"


def capture_rng() -> dict[str, Any]:
    version, state, gauss = random.getstate()
    np_state: Any = np.random.get_state()  # the legacy tuple form
    out: dict[str, Any] = {
        "python": {"version": version, "state": list(state), "gauss": gauss},
        "numpy": {
            "key": np_state[0],
            "state": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore_rng(rng: dict[str, Any]) -> None:
    py = rng["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    n = rng["numpy"]
    np.random.set_state(
        (
            n["key"],
            n["state"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


STATE_RE = re.compile(r"state-(\d+)\.pt")
REQUIRED_KEYS = ("iteration", "model", "optimizer", "scheduler", "scaler", "rng")


def save_state(run_dir: Path, iteration: int, state: dict[str, Any], keep: int) -> Path:
    """Write ``state`` as ``checkpoints/state-<iteration>.pt``, then move the pointer to it.

    Older states are pruned only after the new one and the pointer are on disk. A failed write
    raises :class:`StorageError` and leaves the previous states untouched.
    """
    folder = run_dir / STATE_DIR
    path = folder / f"state-{iteration:08d}.pt"
    buf = io.BytesIO()
    torch.save(state, buf)
    previous = latest_state_path(run_dir)
    kept = f"; the previous state {previous.name} is intact" if previous else ""
    with storage_errors(path, kept):
        claim_files(run_dir, [f"{STATE_DIR}/{path.name}", f"{STATE_DIR}/{POINTER}"])
        atomic_write_bytes(path, buf.getvalue())
    with storage_errors(folder / POINTER, kept):
        atomic_write_text(
            folder / POINTER, json.dumps({"iteration": iteration, "state": path.name})
        )
    for old in state_files(run_dir)[keep:]:
        remove_file(old)
    return path


def state_files(run_dir: Path) -> list[Path]:
    """The complete state files of a run, newest (highest iteration) first.

    Files appear under their final name only once fully written (temp + fsync + rename), so
    every file listed here was complete when it was written.
    """
    folder = run_dir / STATE_DIR
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = STATE_RE.fullmatch(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found, reverse=True)]


def has_state(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds any training state (a state file or a pointer)."""
    return bool(state_files(run_dir)) or (run_dir / STATE_DIR / POINTER).exists()


def latest_state_path(run_dir: Path) -> Path | None:
    """The newest state file, or None. The pointer is not trusted: it may be missing or stale."""
    files = state_files(run_dir)
    return files[0] if files else None


def find_resumable_state(
    run_dir: Path, warn: Callable[[str], None] = lambda _m: None, quarantine: bool = False
) -> tuple[Path, dict[str, Any]] | None:
    """The newest state that loads, with its contents; None if the run has no state file.

    A state that cannot be read is skipped with a warning (and, with ``quarantine``, renamed to
    ``*.unreadable`` so that later saves and resumes ignore it); if none can be read, a
    :class:`CheckpointError` names the folder (never a silent restart from scratch).
    """
    files = state_files(run_dir)
    pointer = run_dir / STATE_DIR / POINTER
    if files and not _pointer_ok(pointer):
        warn(f"warning: {pointer} is missing or damaged; using the newest loadable state file")
    skipped: list[tuple[Path, CheckpointError]] = []
    for path in files:
        try:
            state = load_state(path)
        except CheckpointError as err:
            skipped.append((path, err))
            warn(f"warning: skipping {path.name}: {err}")
            continue
        if quarantine:
            for bad, _ in skipped:
                renamed = bad.with_name(bad.name + ".unreadable")
                with contextlib.suppress(FacdError, OSError):
                    claim_files(run_dir, [f"{STATE_DIR}/{renamed.name}"])
                    move(bad, renamed)
        return path, state
    if skipped:  # nothing is renamed: the user decides what to do with the files
        raise CheckpointError(
            f"{run_dir / STATE_DIR}: none of the {len(files)} state files can be loaded "
            f"(newest: {skipped[0][1]})"
        )
    if pointer.exists():
        raise CheckpointError(f"{pointer} exists but {pointer.parent} holds no state-*.pt file")
    return None


def _pointer_ok(pointer: Path) -> bool:
    try:
        name = json.loads(pointer.read_text())["state"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return isinstance(name, str) and (pointer.parent / Path(name).name).is_file()


def load_state(path: Path) -> dict[str, Any]:
    """Read a state file with ``torch.load(weights_only=True)``: tensors and plain data only.

    A pickled class or function is refused (no code runs); a damaged file is called corrupt.
    """
    state = torch_load_weights_only(path, "training state")
    missing = [k for k in REQUIRED_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(f"{path}: not a facd training state (missing {', '.join(missing)})")
    return state
