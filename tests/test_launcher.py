"""``facd train --nproc 2`` as a user runs it: its processes live and die with the launcher.

Two gloo ranks on CPU under torchrun. A SIGKILLed launcher leaves no process behind (torchrun
gets a parent-death signal, the ranks watch the launcher's pid); a Ctrl-C stops every rank at
one iteration with a checkpoint, exit 130 and no traceback; while the launcher runs, a second
``facd train`` into the same folder is refused with the launcher's pid. Also Ctrl-C of a
single-process run with data-loading workers. Linux only (the process tree is read from /proc).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facd.train.state import latest_state_path

from .helpers import make_image_folder

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the process tree from /proc"
)

CONFIG = """\
method: scratch
scale: 2
seed: 1
student: {preset: edsr-tiny-s}
data: {train_dirs: [data], patch_size: 8}
val: {sets: [], every: 0}
train: {iterations: 100000, batch_size: 4, log_every: 5, save_every: 5, device: cpu}
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("launcher")
    make_image_folder(root / "data", count=3, size=(40, 48))
    (root / "cfg.yaml").write_text(CONFIG)
    return root


def _env(work: Path) -> dict[str, str]:
    return {**os.environ, "FACD_CACHE": str(work / "cache"), "OMP_NUM_THREADS": "1"}


def descendants(pid: int) -> set[int]:
    """All processes below ``pid``, from /proc (its children, theirs, ...)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":  # a zombie has exited; only its parent has not collected it yet
            out.add(pid)
    return out


def _as_from_a_terminal() -> None:
    """In the child: Ctrl-C (SIGINT) at its default, as a shell gives a foreground job. A
    process started in the background of a non-interactive shell (``cmd &``, ``nohup``)
    inherits SIGINT ignored, and facd keeps an inherited ignore, as every Unix program does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_train(work: Path, *args: str) -> subprocess.Popen:
    """``facd train cfg.yaml ARGS`` in a session of its own, as a shell gives a job (the test can
    signal the whole group), with SIGINT at its default."""
    return subprocess.Popen(
        [sys.executable, "-m", "facd", "train", "cfg.yaml", *args],
        cwd=work,
        env=_env(work),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_as_from_a_terminal,
    )


def start_launcher(work: Path, out: str, *extra: str) -> subprocess.Popen:
    return start_train(work, "--out", out, "--nproc", "2", "--no-progress", *extra)


def wait_for_state(proc: subprocess.Popen, run: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while latest_state_path(run) is None:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.05)


def test_sigkilled_launcher_leaves_no_process_and_the_lock_names_it(work):
    proc = start_launcher(work, "killed")
    run = work / "killed"
    tree: set[int] = set()
    try:
        wait_for_state(proc, run)
        tree = descendants(proc.pid)
        assert len(tree) >= 3, tree  # torchrun and two ranks
        # a second writer is refused while the launcher runs, naming the launcher
        second = subprocess.run(
            [sys.executable, "-m", "facd", "train", "cfg.yaml", "--out", "killed", "--resume"],
            cwd=work, env=_env(work), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert second.returncode == 2, second.stderr
        assert f"killed is being written by another facd train (pid {proc.pid})" in second.stderr
        assert "Traceback" not in second.stderr

        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 5.0
        while alive(tree) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(tree), f"orphans still running: {sorted(alive(tree))}"
        # nothing writes any more: the newest state stays the newest
        newest = latest_state_path(run)
        time.sleep(1.0)
        assert latest_state_path(run) == newest
    finally:  # a failure must not leave training processes behind
        for pid in alive(tree | {proc.pid}):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()


def test_ctrl_c_stops_all_ranks_at_a_checkpoint_exit_130_no_traceback(work):
    proc = start_launcher(work, "ctrlc")
    run = work / "ctrlc"
    wait_for_state(proc, run)
    tree = descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)  # what a Ctrl-C in the terminal does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    state = latest_state_path(run)
    assert (
        f"facd train: interrupted; checkpoint {Path('ctrlc') / 'checkpoints' / state.name}" in err
    )
    assert "continue with --resume" in err
    assert not alive(tree)
    assert not (run / ".facd.lock").exists()  # released and removed on a clean exit


@pytest.mark.parametrize("workers", [0, 2])
def test_ctrl_c_single_process_exits_130_without_traceback(work, workers):
    out = f"single{workers}"
    proc = start_train(work, "--out", out, "--no-progress", "--set", f"data.num_workers={workers}")
    wait_for_state(proc, work / out)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)  # the terminal signals the workers too
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Exception" not in err, err
    assert err.rstrip().splitlines()[-1] == "facd train: interrupted"


def test_data_workers_drop_lost_connection_tracebacks() -> None:
    """A worker's resource-sharer thread reports a hand-over cut short by Ctrl-C through
    sys.excepthook; the workers' hook drops connection errors and passes anything else on."""
    from multiprocessing import AuthenticationError

    from facd.train.loop import _quiet_lost_connection

    seen: list[type] = []
    hook = _quiet_lost_connection(lambda kind, value, tb: seen.append(kind))
    for kind in (ConnectionResetError, EOFError, BrokenPipeError, AuthenticationError):
        hook(kind, kind(), None)
    assert seen == []
    hook(ValueError, ValueError(), None)
    assert seen == [ValueError]
