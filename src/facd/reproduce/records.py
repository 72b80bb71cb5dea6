"""What a reproduction keeps of a run: its fingerprint, and the numbers read from its run folder.

A published result (``<results_dir>/<run id>.json`` and friends) is cached by
:func:`fingerprint`, a 16-hex-digit SHA-256 of a JSON-able object (``json.dumps`` with sorted
keys; :data:`RESULT_VERSION` is part of what is hashed). Nothing here changes what a published
result holds or how it is named: a run folder written by an earlier version of the runner is
read the same way.

From a run folder: the iteration of ``last.safetensors`` (:func:`finished_iteration`), the
metric lines of ``metrics.jsonl`` (:func:`read_jsonl`) and what the result JSON keeps of them:
the alpha = 0 fractions per epoch (:func:`alpha0_summary`), the loss terms over the last quarter
of training (:func:`final_terms`), the validation and loss curves (:func:`val_curve`,
:func:`loss_curve`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from facd.errors import CheckpointError
from facd.fileio import atomic_write_text

#: The version of the result format, hashed into every run's fingerprint.
RESULT_VERSION = 1


def fingerprint(obj: Any) -> str:
    """A short stable hash of a JSON-able object (a row's config plus the evaluation sets)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_jsonl(path: Path) -> list[dict]:
    out: list[dict] = []
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a crash
    return out


def finished_iteration(run_dir: Path) -> int:
    """The iteration recorded in ``last.safetensors`` (-1 if there is none)."""
    from facd.archs.io import read_shapes

    last = run_dir / "last.safetensors"
    if not last.is_file():
        return -1
    try:
        _shapes, meta = read_shapes(last)  # the header only, not the tensors
        return int(json.loads(meta.get("iteration", "-1")))
    except (CheckpointError, ValueError, TypeError):  # damaged: not finished
        return -1


def count_params(net: dict, scale: int) -> int:
    from facd.archs import build_model
    from facd.train.config import NetConfig
    from facd.typedconfig import from_dict

    spec = from_dict(NetConfig, {k: v for k, v in net.items() if k != "weights"}).spec(scale)
    return sum(p.numel() for p in build_model(spec).parameters())


def alpha0_summary(records: list[dict]) -> dict | None:
    """The per-epoch fraction of training samples with alpha = 0 (None if never logged)."""
    per_epoch = [(r["epoch"], r["alpha0_frac_epoch"]) for r in records if "alpha0_frac_epoch" in r]
    if not per_epoch:
        return None
    values = [v for _, v in per_epoch]
    tail = values[-max(1, len(values) // 4) :]
    return {
        "per_epoch": per_epoch,
        "mean": sum(values) / len(values),
        "last_quarter_mean": sum(tail) / len(tail),
        "min": min(values),
        "max": max(values),
    }


def final_terms(records: list[dict]) -> dict[str, float]:
    """Mean of each logged loss term (unweighted) and the total over the last quarter of logs."""
    lines = [r for r in records if "loss" in r]
    tail = lines[-max(1, len(lines) // 4) :]
    skip = {"iteration", "epoch", "lr", "it_per_s", "iterations_averaged", "alpha0"}
    keys = [k for k in (tail[0] if tail else {}) if k not in skip]
    return {k: sum(r[k] for r in tail if k in r) / len(tail) for k in keys}


def val_curve(records: list[dict]) -> list[list[float]]:
    """``[iteration, Y-PSNR on the first validation set]`` for every validation line."""
    out = []
    for r in records:
        val = r.get("val")
        if isinstance(val, dict) and val:
            first = next(iter(val.values()))
            out.append([r["iteration"], first["psnr_y"]])
    return out


def loss_curve(records: list[dict]) -> list[list[float]]:
    """``[iteration, total loss]`` for every metrics line that logs the loss."""
    return [[r["iteration"], r["loss"]] for r in records if "loss" in r and "iteration" in r]


def load_config_dict(cfg: dict) -> dict:
    """A row's config resolved (defaults filled in), as a dict."""
    from facd.train.config import load_config

    return load_config(None, [], base=cfg).to_dict()


def stage_extras(stage: str) -> list[tuple[str, str]]:
    """(file in the run folder, published name) of the extra networks a stage saves beside its
    weights (the names :mod:`facd.train.rundir` knows, e.g. PISR's encoder ``pisr_encoder``,
    published as ``<stage>_encoder.safetensors``)."""
    from facd.distill.methods import term_outputs

    return [(n, f"{stage}_{n.split('_', 1)[-1]}") for n in term_outputs()]


def read_json(path: Path) -> dict:
    """The JSON object in ``path``; ``{}`` when it is missing or unreadable (not cached)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def read_yaml(path: Path) -> dict | None:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def write_json(path: Path, doc: dict) -> None:
    """Write a result atomically, one-space indented, with a final newline."""
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")


def add_time(path: Path, key: str, seconds: float) -> None:
    """Add ``seconds`` to ``key`` of the timing file ``path`` (rounded to 0.1 s); nothing is
    written when the run folder is gone."""
    doc = read_json(path)
    doc[key] = round(float(doc.get(key, 0.0)) + seconds, 1)
    if path.parent.is_dir():
        write_json(path, doc)
