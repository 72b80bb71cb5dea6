"""A finished ``facd train --nproc 2`` exits 0, every time, also on a loaded machine.

Its ranks used to leave with gloo's C++ threads and facd's launcher watchdog still running, so
that the interpreter's finalisation and the C++ static destructors raced with them; now and then
a rank aborted after its last step ("terminate called without an active exception", SIGABRT)
and torchrun reported a failed run. A finished rank now stops its watchdog and leaves with
``os._exit`` (:func:`facd.train.distributed.end_launched_rank`). Linux only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from facd.train.rundir import LAUNCHER_ENV, watch_launcher

from .helpers import make_image_folder

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="torchrun's process model as on Linux"
)

CONFIG = """\
method: scratch
scale: 2
seed: 1
student: {preset: edsr-tiny-s}
data: {train_dirs: [data], patch_size: 8}
val: {sets: [], every: 0}
train: {iterations: 2, batch_size: 4, log_every: 1, save_every: 2, device: cpu}
"""

LAUNCHES = 20
BUSY = 3  # processes spinning on the CPU meanwhile


def watchdogs() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "facd-launcher-watchdog"]


def test_the_launcher_watchdog_stops_and_its_thread_ends(monkeypatch):
    monkeypatch.setenv(LAUNCHER_ENV, f"{os.getpid()}:/nowhere")  # this process as the launcher
    gone: list[int] = []
    stop = watch_launcher(on_gone=lambda: gone.append(1), interval=0.01)
    assert stop is not None and len(watchdogs()) == 1
    stop()
    assert watchdogs() == [] and gone == []


@pytest.mark.slow
def test_finished_launches_under_load_all_exit_0(tmp_path):
    make_image_folder(tmp_path / "data", count=2, size=(40, 48))
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    env = {**os.environ, "FACD_CACHE": str(tmp_path / "cache")}
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(BUSY)]
    failures = []
    try:
        for i in range(LAUNCHES):
            out = Path(f"run{i}")
            cmd = [sys.executable, "-m", "facd", "train", "cfg.yaml", "--out", str(out),
                   "--nproc", "2", "--no-progress"]  # fmt: skip
            proc = subprocess.run(
                cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
            )
            bad = ("terminate called", "ChildFailedError", "Traceback")
            if proc.returncode != 0 or any(b in proc.stderr for b in bad):
                failures.append(f"launch {i}: exit {proc.returncode}: {proc.stderr[-2000:]}")
            elif "student weights:" not in proc.stdout:  # rank 0's output survives os._exit
                failures.append(f"launch {i}: no summary on stdout: {proc.stdout!r}")
    finally:
        for p in busy:
            p.kill()
            p.wait()
    assert not failures, "\n".join(failures)
