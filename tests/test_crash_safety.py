"""Crash safety: SIGKILL at random moments, SIGTERM pre-emption, damaged pointers, NaN losses.

The kill test runs ``facd train`` in a separate process, kills it with SIGKILL several times
at random moments (during steps, saves, pruning), checks after every kill that each state and
safetensors file on disk loads, resumes with ``--resume`` each time, and finally compares the
weights with an uninterrupted run: they must be bit-identical on CPU.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from facd.cli import main
from facd.train.state import POINTER, STATE_DIR, load_state, state_files

from .helpers import make_image_folder

ITERATIONS = 40
CONFIG = f"""\
method: scratch
scale: 2
seed: 3
student: {{preset: edsr-tiny-s}}
data: {{train_dirs: [data], patch_size: 8}}
val: {{sets: [], every: 0}}
train: {{iterations: {ITERATIONS}, batch_size: 2, log_every: 1, save_every: 3,
         keep_checkpoints: 2, device: cpu}}
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("crash")
    make_image_folder(root / "data", count=3, size=(40, 48))
    (root / "cfg.yaml").write_text(CONFIG)
    return root


# Training processes are forked from a forkserver that imported torch once: each start takes
# a fraction of a second instead of seconds, so the test can afford many kills. They are real
# processes, killed for real; OMP_NUM_THREADS=1 makes their arithmetic identical.
_CTX = multiprocessing.get_context("forkserver")


def _train_child(argv: list[str], cwd: str, cache: str, log: str) -> None:
    os.chdir(cwd)
    os.environ["FACD_CACHE"] = cache
    sys.stdout = sys.stderr = open(log, "w", buffering=1)  # noqa: SIM115
    sys.exit(main(argv))


class Training:
    """``facd train cfg.yaml --out OUT ...`` in a separate process."""

    def __init__(self, work: Path, out: str, *extra: str) -> None:
        self.log = work / f"{out}.{time.monotonic_ns()}.log"
        argv = ["train", "cfg.yaml", "--out", out, "--no-progress", *extra]
        args = (argv, str(work), str(work / "cache"), str(self.log))
        self.proc = _CTX.Process(target=_train_child, args=args)
        self.proc.start()

    def running(self) -> bool:
        return self.proc.is_alive()

    def send_signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def wait(self, timeout: float = 300) -> tuple[int | None, str]:
        self.proc.join(timeout)
        return self.proc.exitcode, self.log.read_text() if self.log.exists() else ""


@pytest.fixture(scope="module", autouse=True)
def _forkserver():
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the forkserver when it starts
    _CTX.set_forkserver_preload(["torch", "torch._dynamo", "facd.cli", "facd.train.loop"])
    yield
    if old is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = old


def start(work: Path, out: str, *extra: str) -> Training:
    return Training(work, out, *extra)


def newest_iteration(run: Path) -> int:
    files = state_files(run)
    return int(files[0].stem.split("-")[1]) if files else 0


def logged_iteration(metrics: Path, old_inode: int | None) -> int:
    """Highest iteration logged by the current process (0 until it rewrote the log)."""
    try:
        if metrics.stat().st_ino == old_inode:
            return 0  # lines of the killed process, not yet truncated by the new one
        lines = metrics.read_text().splitlines()
    except (FileNotFoundError, ValueError):
        return 0
    its = [json.loads(x)["iteration"] for x in lines if x.endswith("}")]
    return max(its, default=0)


def interrupt(work: Path, run: Path, rng: random.Random, sig: int) -> Training:
    """Resume the run, let it pass a random iteration past its next save, send ``sig``."""
    metrics = run / "metrics.jsonl"
    old_inode = metrics.stat().st_ino if metrics.exists() else None
    # logging iteration s+4 happens after state s+3 is saved: every round makes progress. The
    # target stays 3 iterations short of the end (about 0.1 s of training, more than the wait
    # below), so that the signal never finds the run finished and its process gone.
    target = min(newest_iteration(run) + rng.randint(4, 6), ITERATIONS - 3)
    proc = start(work, run.name, "--resume")
    deadline = time.monotonic() + 180
    while logged_iteration(metrics, old_inode) < target:
        assert proc.running(), proc.wait()[1]
        assert time.monotonic() < deadline, "training made no progress"
        time.sleep(0.005)
    time.sleep(rng.uniform(0.0, 0.05))  # land anywhere: a step, a save, the pruning, a log
    proc.send_signal(sig)
    return proc


def check_everything_loads(run: Path) -> None:
    """Every state and weight file that exists after a crash is complete."""
    for path in state_files(run):
        state = load_state(path)
        assert state["iteration"] == int(path.stem.split("-")[1])
    for path in run.glob("*.safetensors"):
        load_file(path)
    pointer = run / STATE_DIR / POINTER
    if pointer.exists():
        assert (run / STATE_DIR / json.loads(pointer.read_text())["state"]).is_file()


def test_kills_and_preemption_then_resume_is_bit_identical(work):
    """4 SIGKILLs and one SIGTERM at random moments; the result equals an uninterrupted run."""
    seed = int(os.environ.get("FACD_KILL_SEED", random.randrange(10**6)))
    rng = random.Random(seed)
    reference = start(work, "ref")  # runs alongside, on the other core
    run = work / "killed"
    plan = [signal.SIGKILL] * 4
    plan.insert(rng.randint(1, 3), signal.SIGTERM)
    t0 = time.monotonic()
    for sig in plan:
        proc = interrupt(work, run, rng, sig)
        code, err = proc.wait()
        torn = len(list(run.rglob(".*.tmp")))  # > 0: the kill interrupted a write
        print(f"{time.monotonic() - t0:.1f}s: {sig.name} at state {newest_iteration(run)}, {torn=}")
        if sig == signal.SIGKILL:
            assert code == -signal.SIGKILL, f"seed {seed}: {err}"
        else:  # pre-emption: a checkpoint at the stop iteration and a clean exit
            assert code == 0, f"seed {seed}: {err}"
            stopped = newest_iteration(run)
            assert f"stopped by signal at iteration {stopped}; checkpoint saved" in err
            assert json.loads((run / STATE_DIR / POINTER).read_text())["iteration"] == stopped
            with safe_open(str(run / "last.safetensors"), "pt") as f:
                assert json.loads(f.metadata()["iteration"]) == stopped
        check_everything_loads(run)
    code, err = start(work, run.name, "--resume").wait()
    assert code == 0, err
    code, err = reference.wait()
    assert code == 0, err
    final = load_file(run / "last.safetensors")
    expected = load_file(work / "ref/last.safetensors")
    assert final.keys() == expected.keys()
    diff = [k for k in final if not torch.equal(final[k], expected[k])]
    assert not diff, f"weights differ after {len(plan)} interruptions (seed {seed}): {diff[:3]}"
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in lines if "loss" in r] == list(range(1, ITERATIONS + 1))
    assert not list(run.rglob(".*.tmp"))  # temporary files of killed writes were cleaned up


# ------------------------------------------------------------------ in-process cases


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FACD_CACHE", str(tmp_path / "cache"))
    make_image_folder(tmp_path / "data", count=3, size=(40, 48))
    (tmp_path / "cfg.yaml").write_text(CONFIG.replace(f"iterations: {ITERATIONS}", "iterations: 6"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def train(*extra: str) -> int:
    return main(["train", "cfg.yaml", "--no-progress", *extra])


def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err
    return [ln for ln in err.splitlines() if ln.startswith("facd train: error:")]


@pytest.mark.parametrize("damage", ["missing", "garbage", "stale"])
def test_resume_without_a_trustworthy_pointer(tiny, capsys, damage):
    assert train("--out", "ref") == 0
    assert train("--out", "run", "--set", "train.iterations=3") == 0
    pointer = tiny / "run" / STATE_DIR / POINTER
    if damage == "missing":
        pointer.unlink()
    elif damage == "garbage":
        pointer.write_bytes(b"\x00{not json")
    else:  # a crash between the state's rename and the pointer's update
        pointer.write_text(json.dumps({"iteration": 0, "state": "state-00000000.pt"}))
    capsys.readouterr()
    assert train("--out", "run", "--resume") == 0
    err = capsys.readouterr().err
    assert "resumed from iteration 3" in err
    if damage != "stale":
        assert "is missing or damaged; using the newest loadable state file" in err
    a, b = load_file(tiny / "ref/last.safetensors"), load_file(tiny / "run/last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_damaged_newest_state_falls_back_to_the_previous_one(tiny, capsys):
    assert train("--out", "run", "--set", "train.iterations=3", "--set", "train.save_every=1") == 0
    newest = tiny / "run" / STATE_DIR / "state-00000003.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # e.g. a disk error after the fact
    capsys.readouterr()
    assert train("--out", "run", "--resume") == 0
    err = capsys.readouterr().err
    assert "warning: skipping state-00000003.pt: " in err
    assert "corrupt or not a PyTorch training state" in err
    assert "resumed from iteration 2" in err
    assert newest.with_name(newest.name + ".unreadable").exists()


def test_no_loadable_state_is_an_error_not_a_restart(tiny, capsys):
    assert train("--out", "run", "--set", "train.iterations=2", "--set", "train.save_every=1") == 0
    for path in state_files(tiny / "run"):
        path.write_bytes(b"PK\x03\x04 damaged")
    weights = (tiny / "run/last.safetensors").read_bytes()
    capsys.readouterr()
    assert train("--out", "run", "--resume") == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert "none of the 2 state files can be loaded" in line and "run/checkpoints" in line
    assert (tiny / "run/last.safetensors").read_bytes() == weights
    # and without --resume the folder is not overwritten either
    assert train("--out", "run") == 2
    assert (
        "already holds a training state; pass --resume" in error_lines(capsys.readouterr().err)[0]
    )


def _nan_at(monkeypatch, iteration: int) -> None:
    """Make the L1 term return NaN at ``iteration`` (1-based), as a diverging run would."""
    from facd.distill import pixel

    real = pixel.L1ToGT.forward
    calls = {"n": 0}

    def forward(self, ctx):
        calls["n"] += 1
        value = real(self, ctx)
        return value * float("nan") if calls["n"] == iteration else value

    monkeypatch.setattr(pixel.L1ToGT, "forward", forward)


def test_nan_loss_stops_with_the_iteration_and_the_term(tiny, capsys, monkeypatch):
    _nan_at(monkeypatch, 5)
    assert train("--out", "run", "--set", "train.save_every=2") == 3
    (line,) = error_lines(capsys.readouterr().err)
    assert "non-finite loss at iteration 5: term 'l1_gt' is nan" in line
    assert "the last good checkpoint is run/checkpoints/state-00000004.pt" in line
    assert newest_iteration(tiny / "run") == 4
    with safe_open(str(tiny / "run/last.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["iteration"]) == 4


def test_nan_policy_skip_skips_the_batch(tiny, capsys, monkeypatch):
    _nan_at(monkeypatch, 2)
    assert train("--out", "run", "--set", "train.nan_policy=skip") == 0
    err = capsys.readouterr().err
    assert (
        "warning: non-finite loss at iteration 2: term 'l1_gt' is nan; batch skipped (1/10)" in err
    )
    state = load_state(state_files(tiny / "run")[0])
    assert state["iteration"] == 6 and state["skipped"] == 1
    assert all(torch.isfinite(v).all() for v in load_file(tiny / "run/last.safetensors").values())


def test_nan_policy_skip_gives_up_after_max_skips(tiny, capsys, monkeypatch):
    from facd.distill import pixel

    monkeypatch.setattr(pixel.L1ToGT, "forward", lambda self, ctx: ctx.sr_s.sum() * float("inf"))
    code = train("--out", "run", "--set", "train.nan_policy=skip", "--set", "train.max_skips=2")
    assert code == 3
    (line,) = error_lines(capsys.readouterr().err)
    assert "non-finite loss at iteration 3: term 'l1_gt' is" in line
    assert "no checkpoint was written yet" in line
