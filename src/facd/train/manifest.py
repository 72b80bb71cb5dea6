"""A run folder's manifest, ``RUN/.facd-run.json``: facd's mark on a folder it made a run in.

A folder is a facd run folder only if it holds this file. It names every file facd wrote (or
is about to write) there, relative to the folder, and records what the run was trained from::

    {"format": 1,
     "files": ["config.yaml", "metrics.jsonl", "last.safetensors", ...,
               "checkpoints/state-00000050.pt", "tb/events.out.tfevents.1765.host.42"],
     "inputs": {"images": [{"dir": "data", "files": {"img00.png": 34512, ...}}],
                "teacher": {"path": "teacher.safetensors", "sha256": "9f2c..."}}}

``--resume`` and ``--overwrite`` act only on folders with a manifest (or on runs from before
manifests, see :mod:`facd.train.rundir`), and ``--overwrite`` deletes only the files it names.
A name is added before facd first writes that file (:func:`claim_files`), so a crash never
leaves a file of facd's that the manifest does not name; a name whose file was never written is
harmless. Every update rewrites the file atomically (temporary file, fsync, rename).

``inputs`` is what a resume must find unchanged (:func:`input_changes`): the training images
(after ``data.exclude``) with their sizes in bytes, per folder of ``data.train_dirs``, and the
SHA-256 of the teacher's weights file when the method uses a teacher. A size is a cheap proxy
for an edited file (an edit that keeps the size exactly is not detected); the teacher is
hashed because its file is replaced in place when a teacher is retrained. The record is kept
here, not in the resolved config, so no config fingerprint changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from facd.errors import ConfigError
from facd.fileio import atomic_write_text, sha256_file, storage_errors

MANIFEST_NAME = ".facd-run.json"
FORMAT = 1
_STATE_PREFIX = "checkpoints/state-"


def manifest_path(run_dir: Path) -> Path:
    return Path(run_dir) / MANIFEST_NAME


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    """The manifest of ``run_dir``; None when it has none. A damaged one is a ConfigError."""
    path = manifest_path(run_dir)
    if not path.exists() and not path.is_symlink():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        reason = getattr(err, "strerror", None) or type(err).__name__
        raise ConfigError(
            f"{path} is damaged ({reason}); restore it, or delete it to treat the folder as a "
            "run from before run manifests"
        ) from None
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, list) or not all(_safe_name(f) for f in files):
        raise ConfigError(
            f"{path} is damaged (its 'files' is not a list of names inside the folder); "
            "restore it, or delete it to treat the folder as a run from before run manifests"
        )
    return doc


def _safe_name(name: object) -> bool:
    """A relative path inside the run folder (no absolute path, no '..')."""
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name:
        return False
    return ".." not in Path(name).parts


def write_manifest(run_dir: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` atomically as the manifest (a failed write is a one-line StorageError)."""
    path = manifest_path(run_dir)
    with storage_errors(path):
        atomic_write_text(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")


def new_manifest(files: Iterable[str], inputs: dict[str, Any] | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"format": FORMAT, "files": sorted(set(files))}
    if inputs is not None:
        doc["inputs"] = inputs
    return doc


def claim_files(run_dir: Path, names: Iterable[str]) -> None:
    """Add ``names`` (relative to ``run_dir``) to the manifest before facd writes them.

    Creates the manifest if the folder has none (facd is writing there, so the folder is a
    run folder from now on). Names of state files that no longer exist (pruned by
    ``train.keep_checkpoints``) are dropped, so the list does not grow with every save.
    """
    run_dir = Path(run_dir)
    new = {Path(n).as_posix() for n in names}
    doc = read_manifest(run_dir) or new_manifest([], None)
    old = set(doc["files"])
    kept = {f for f in old if not f.startswith(_STATE_PREFIX) or (run_dir / f).exists()}
    if new <= kept and kept == old:
        return
    doc["files"] = sorted(kept | new)
    write_manifest(run_dir, doc)


# ------------------------------------------------------------------------- training inputs


def training_inputs(rcfg: Any) -> dict[str, Any]:
    """What the run of ``rcfg`` trains from (see the module docstring)."""
    from facd.data.patches import training_image_paths
    from facd.distill.methods import needs_of

    cfg = rcfg.config
    dirs = [str(d) for d in cfg.data.train_dirs]
    paths = training_image_paths(dirs, cfg.data.exclude)
    images = []
    for d in dirs:
        folder = Path(d)
        files = {p.name: p.stat().st_size for p in paths if p.parent == folder}
        images.append({"dir": d, "files": files})
    out: dict[str, Any] = {"images": images}
    teacher = cfg.teacher.weights if cfg.teacher is not None else None
    if teacher and needs_of(rcfg.loss).teacher and Path(teacher).is_file():
        out["teacher"] = {"path": str(teacher), "sha256": sha256_file(Path(teacher))}
    return out


def input_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two input records, as short phrases (empty when nothing does)."""
    changes: list[str] = []
    added: list[str] = []
    removed: list[str] = []
    resized: list[str] = []
    old_dirs = old.get("images") or []
    new_dirs = new.get("images") or []
    for i, cur in enumerate(new_dirs):
        before = old_dirs[i]["files"] if i < len(old_dirs) else {}
        now = cur["files"]
        where = cur["dir"]
        added += [f"{where}/{n}" for n in sorted(set(now) - set(before))]
        removed += [f"{where}/{n}" for n in sorted(set(before) - set(now))]
        resized += [f"{where}/{n}" for n in sorted(set(now) & set(before)) if now[n] != before[n]]
    for what, names in (("added", added), ("removed", removed), ("changed", resized)):
        if names:
            changes.append(f"{len(names)} training image(s) {what} ({_names(names)})")
    t_old, t_new = old.get("teacher"), new.get("teacher")
    if t_old and t_new and t_old.get("sha256") != t_new.get("sha256"):
        changes.append(
            f"the teacher's weights in {t_new['path']} changed (sha256 "
            f"{str(t_old.get('sha256'))[:12]}... then, {t_new['sha256'][:12]}... now)"
        )
    return changes


def _names(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
