"""The complete training state, written atomically and read back without unpickling code.

Layout of a run directory::

    config.yaml                 the resolved config
    last.safetensors            student weights of the latest checkpoint (facd format)
    best.safetensors            student weights with the best validation Y-PSNR
    checkpoints/state-NNNNNNNN.pt   optimizer, scheduler, scaler, loss modules, RNG, iteration
    checkpoints/latest.json     pointer to the newest complete state file
    metrics.jsonl, tb/          logs

Each file is written to a temporary name, fsynced and renamed, and the pointer is updated only
after its state file is complete, so a crash at any moment leaves a loadable latest state.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facd.errors import CheckpointError
from facd.fileio import atomic_write_bytes, atomic_write_text

STATE_DIR = "checkpoints"
POINTER = "latest.json"


def capture_rng() -> dict[str, Any]:
    version, state, gauss = random.getstate()
    np_state = np.random.get_state()
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


def save_state(run_dir: Path, iteration: int, state: dict[str, Any], keep: int) -> Path:
    """Write ``state`` as ``checkpoints/state-<iteration>.pt``, then move the pointer to it."""
    folder = run_dir / STATE_DIR
    path = folder / f"state-{iteration:08d}.pt"
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_text(folder / POINTER, json.dumps({"iteration": iteration, "state": path.name}))
    for old in sorted(folder.glob("state-*.pt"))[:-keep]:
        old.unlink(missing_ok=True)
    return path


def latest_state_path(run_dir: Path) -> Path | None:
    pointer = run_dir / STATE_DIR / POINTER
    if not pointer.is_file():
        return None
    try:
        name = json.loads(pointer.read_text())["state"]
    except (ValueError, KeyError):
        raise CheckpointError(f"{pointer}: damaged pointer file") from None
    path = run_dir / STATE_DIR / Path(name).name
    if not path.is_file():
        raise CheckpointError(f"{pointer} points at {path.name}, which does not exist")
    return path


def load_state(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure means the file is unusable
        raise CheckpointError(
            f"{path}: cannot read training state ({str(err).splitlines()[0][:160]})"
        ) from None
