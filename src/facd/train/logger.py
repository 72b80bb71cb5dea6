"""Run logging: ``metrics.jsonl`` (one JSON object per line) and TensorBoard event files.

The event files (``RUN/tb/events.out.tfevents.*``, one per launch) are written synchronously
with tensorboardX's ``EventsWriter``, not through its ``SummaryWriter``: that one writes from a
background thread, where a full disk kills the thread with a traceback and the next logs block
on its full queue. Here a failed write raises ``OSError`` in the training loop, like a failed
``metrics.jsonl`` write, and becomes a one-line ``StorageError`` naming the event file. To look at them:
``pip install tensorboard`` then ``tensorboard --logdir RUN/tb``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from facd.fileio import atomic_write_text, open_append


class RunLogger:
    def __init__(
        self, run_dir: Path, resume_from: int | None = None, tensorboard: bool = True
    ) -> None:
        self.run_dir = run_dir
        self.path = run_dir / "metrics.jsonl"
        if resume_from is not None and self.path.exists():
            self._truncate_after(resume_from)
        self._file = open_append(self.path)
        self._tb = _EventFile(run_dir / "tb") if tensorboard else None

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

    @property
    def files(self) -> list[Path]:
        """The files this logger writes: ``metrics.jsonl`` and the TensorBoard event file."""
        event = self._tb.path if self._tb is not None else None
        return [self.path] + ([event] if event is not None else [])

    def log(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, default=_jsonable) + "\n")
        self._file.flush()
        if self._tb is not None:
            step = int(record.get("iteration", 0))
            scalars = {
                key: float(value)
                for key, value in _flatten(record).items()
                if key != "iteration"
                and isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
            }
            self._tb.write(scalars, step)

    def close(self) -> None:
        """Close both logs, even if the first fails; then raise the first error."""
        errors: list[BaseException] = []
        for closer in (self._file.close, self._tb.close if self._tb is not None else None):
            if closer is None:
                continue
            try:
                closer()
            except Exception as err:  # noqa: BLE001 - re-raised below
                errors.append(err)
        self._tb = None
        if errors:
            raise errors[0]


class _EventFile:
    """One TensorBoard event file, written and flushed in the calling thread."""

    def __init__(self, folder: Path) -> None:
        self._writer = None
        try:
            from tensorboardX.event_file_writer import EventsWriter
            from tensorboardX.proto.event_pb2 import Event
            from tensorboardX.summary import scalar
        except ImportError:  # logging to TensorBoard is optional
            return
        self._event, self._scalar = Event, scalar
        folder.mkdir(parents=True, exist_ok=True)
        # The pid keeps two launches within one second from sharing an event file.
        self._writer = EventsWriter(str(folder / "events"), f".{os.getpid()}")

    @property
    def path(self) -> Path | None:
        """The event file (its name is tensorboardX's), or None without tensorboardX."""
        name = getattr(self._writer, "_file_name", None)
        return Path(name) if name else None

    def write(self, scalars: dict[str, float], step: int) -> None:
        if self._writer is None or not scalars:
            return
        now = time.time()
        try:
            for key, value in scalars.items():
                summary = self._scalar(key, value)
                self._writer.write_event(self._event(wall_time=now, step=step, summary=summary))
            self._writer.flush()
        except OSError as err:
            from facd.train.state import StorageError

            reason = err.strerror or str(err) or type(err).__name__
            path = getattr(self._writer, "_file_name", "the TensorBoard event file")
            raise StorageError(f"cannot write {path}: {reason}") from None

    def close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            with contextlib.suppress(ValueError):  # already closed
                writer.close()


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
