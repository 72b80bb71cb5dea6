"""One job of a reproduction, run in a process of its own by the protocol runner::

    python -m facd.reproduce.job JOB.json

A job file is JSON written by :class:`facd.reproduce.runner.Reproduction`, one of

* ``{"kind": "train", "config": {...}, "run_dir": "..."}``: train (or continue) one run with
  :func:`facd.train.run` (``resume=True``);
* ``{"kind": "eval", "model": "...", "scale": 4, "sets": [...], "data_root": "...",
  "out": "eval.json", "teacher_sr": "..." | null, "keep_sr": "..." | null}``: evaluate one model
  with :func:`facd.reproduce.evaljob.evaluate_model` and write its JSON to ``out``;
* ``{"kind": "split", "models": [...], "split": "val.txt", "train_dirs": [...], "scale": 4,
  "out": "split.json"}``: measure weights files on the validation split
  (:func:`facd.reproduce.evaljob.evaluate_split`; the saturation check);
* ``{"kind": "alpha", "student": "...", "teacher": "...", "train_dirs": [...], "scale": 4,
  "patch_size": 48, "samples": 512, "exclude": "..." | null, "out": "alpha.json"}``: the
  alpha = 0 fraction on patches (:func:`facd.reproduce.alphapatch.alpha0_on_patches`).

Choices: a job calls library functions, not the ``facd`` command line, so nothing is re-parsed
from flags; the runner still starts one process per job, for parallel jobs with one thread each
and so that a crash of one run cannot take the others down. A train job is
:func:`facd.train.run`, the sequence of ``facd train`` (the run folder's lock, its checks), and
always resumes: a folder
without a training state starts from scratch, so a run folder that an earlier sitting wrote to
(its config and logs, before the first checkpoint) is taken up again rather than refused.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from facd.errors import ConfigError, exit_status
from facd.fileio import atomic_write_text

__all__ = ["main", "run_job"]

PROG = "python -m facd.reproduce.job"


def run_job(job: dict[str, Any]) -> None:
    """Run one job (see the module docstring for its keys)."""
    kind = job.get("kind")
    if kind == "train":
        from facd.train import run

        run(job["config"], Path(job["run_dir"]), resume=True, progress=False)
    elif kind == "eval":
        from facd.reproduce.evaljob import evaluate_model, write_result

        doc = evaluate_model(
            job["model"],
            list(job["sets"]),
            int(job["scale"]),
            job["data_root"],
            teacher_sr=_path(job.get("teacher_sr")),
            keep_sr=_path(job.get("keep_sr")),
        )
        write_result(Path(job["out"]), doc)
    elif kind == "split":
        from facd.reproduce.evaljob import evaluate_split, write_result

        doc = evaluate_split(
            list(job["models"]), job["split"], list(job["train_dirs"]), int(job["scale"])
        )
        write_result(Path(job["out"]), doc)
    elif kind == "alpha":
        from facd.reproduce.alphapatch import alpha0_on_patches
        from facd.reproduce.evaljob import write_result

        doc = alpha0_on_patches(
            job["student"],
            job["teacher"],
            list(job["train_dirs"]),
            int(job["scale"]),
            patch_size=int(job["patch_size"]),
            samples=int(job["samples"]),
            exclude=job.get("exclude"),
        )
        write_result(Path(job["out"]), doc)
    else:
        raise ConfigError(f"job kind {kind!r} is unknown; use 'train', 'eval', 'split' or 'alpha'")


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _read_job(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ConfigError(f"{path}: cannot read the job file ({type(err).__name__})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: a job file holds a JSON object")
    return doc


def write_job(path: Path, job: dict[str, Any]) -> None:
    """Write a job file (atomically, so a killed runner never leaves half a job)."""
    atomic_write_text(path, json.dumps(job, indent=1, default=str) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(f"usage: {PROG} JOB.json", file=sys.stderr)
        return 2
    return exit_status(PROG, lambda: run_job(_read_job(Path(args[0]))))


if __name__ == "__main__":
    raise SystemExit(main())
