"""Run logging: ``metrics.jsonl`` (one JSON object per line) and TensorBoard event files."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from facd.fileio import atomic_write_text


class RunLogger:
    def __init__(
        self, run_dir: Path, resume_from: int | None = None, tensorboard: bool = True
    ) -> None:
        self.path = run_dir / "metrics.jsonl"
        if resume_from is not None and self.path.exists():
            self._truncate_after(resume_from)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._tb = None
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter

                # The pid keeps two launches within one second from sharing an event file.
                self._tb = SummaryWriter(str(run_dir / "tb"), filename_suffix=f".{os.getpid()}")
            except ImportError:
                self._tb = None

    def _truncate_after(self, iteration: int) -> None:
        """Drop lines logged after the checkpoint we resume from (they will be logged again)."""
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("iteration", 0) <= iteration:
                    kept.append(line)
            except ValueError:
                continue  # a line cut short by a crash
        atomic_write_text(self.path, "".join(k + "\n" for k in kept))

    def log(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, default=_jsonable) + "\n")
        self._file.flush()
        if self._tb is not None:
            step = int(record.get("iteration", 0))
            for key, value in _flatten(record).items():
                if key != "iteration" and isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(key, value, step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}/{key}" if prefix else key
        if isinstance(value, dict):
            out.update(_flatten(value, name))
        else:
            out[name] = value
    return out


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
