"""Run-folder rules of ``facd train``: nothing facd did not write is deleted or overwritten.

A new run starts only in an empty folder (or the leftovers of a run that never saved); a folder
holding results or other files needs ``--resume`` or ``--overwrite``; ``--overwrite`` deletes
exactly facd's files; only facd's own temporary files are cleaned up; one writer at a time;
a full disk reports the first error even when the TensorBoard writer fails too; a resumed
run's metrics lines say how many iterations they average; ``facd reproduce`` killed in the
middle of a training run takes it up again.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from facd import fileio
from facd.cli import main
from facd.train.manifest import claim_files
from facd.train.state import latest_state_path, state_files

from .helpers import make_finished_run
from .test_reproduce import _protocol as ci_protocol

CONFIG = """\
method: scratch
scale: 2
seed: 0
student: {preset: edsr-tiny-s}
data: {train_dirs: [data], patch_size: 8}
val: {sets: [Tiny], data_root: bench, every: 0}
train: {iterations: 2, batch_size: 2, log_every: 1, save_every: 1, device: cpu}
"""


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FACD_CACHE", str(tmp_path_factory.getbasetemp() / "lr-cache"))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A finished two-iteration run ``run/`` beside its config and data."""
    root = tmp_path_factory.mktemp("base")
    os.environ.setdefault("FACD_CACHE", str(tmp_path_factory.getbasetemp() / "lr-cache"))
    return make_finished_run(root, CONFIG, bench=True)


@pytest.fixture
def case(base, tmp_path, monkeypatch) -> Path:
    root = tmp_path / "case"
    shutil.copytree(base, root)
    monkeypatch.chdir(root)
    return root


def train(*extra: str, out: str = "run") -> int:
    return main(["train", "cfg.yaml", "--out", out, "--no-progress", *extra])


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("facd train: error:")]
    assert len(lines) == 1, err
    return lines[0]


# ------------------------------------------------------------------ what a new run may overwrite


def test_new_run_refuses_weights_without_a_state_and_keeps_user_files(case, capsys):
    """The reported loss: best.safetensors replaced and .notes.tmp deleted, exit 0."""
    run = case / "run"
    shutil.rmtree(run / "checkpoints")
    (run / ".notes.tmp").write_text("my notes")
    before = snapshot(run)
    assert train() == 2
    line = error_line(capsys)
    assert line.startswith("facd train: error: run is not empty: it holds results of an earlier")
    assert "best.safetensors, last.safetensors" in line and ".notes.tmp" in line
    assert "--resume" in line and "--overwrite" in line
    assert snapshot(run) == before


def test_new_run_refuses_a_folder_with_foreign_files(case, capsys, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("x")
    assert train(out=str(folder)) == 2
    assert "files facd did not write (thesis.tex)" in error_line(capsys)
    assert [p.name for p in folder.iterdir()] == ["thesis.tex"]


def test_new_run_takes_up_the_leftovers_of_a_run_that_never_saved(case, capsys):
    """config.yaml, logs and crash temporaries of a run killed before its first checkpoint
    (its manifest names them: facd made the folder)."""
    run = case / "early"
    (run / "tb").mkdir(parents=True)
    (run / "config.yaml").write_text("method: scratch\n")
    (run / "metrics.jsonl").write_text("")
    (run / "tb/events.out.tfevents.1.host.1").write_bytes(b"")
    (run / ".facd.lock").write_text("12345\n")  # stale: its process is gone, and so is the lock
    (run / ".config.yaml.facd-ab12cd34.tmp").write_text("torn")
    names = ["config.yaml", "metrics.jsonl", "tb/events.out.tfevents.1.host.1"]
    (run / ".facd-run.json").write_text(json.dumps({"format": 1, "files": names}))
    assert train(out="early") == 0
    assert latest_state_path(run) is not None
    assert not (run / ".config.yaml.facd-ab12cd34.tmp").exists()
    assert not (run / ".facd.lock").exists()


def test_resume_without_a_state_refuses_to_replace_weights(case, capsys):
    run = case / "run"
    shutil.rmtree(run / "checkpoints")
    before = snapshot(run)
    assert train("--resume") == 2
    line = error_line(capsys)
    assert "--resume: run holds best.safetensors, last.safetensors but no training state" in line
    assert snapshot(run) == before


def test_resume_and_overwrite_exclude_each_other(case, capsys):
    assert train("--resume", "--overwrite") == 2
    assert "--resume and --overwrite exclude each other" in error_line(capsys)


def test_overwrite_replaces_only_facds_files(case, capsys):
    run = case / "run"
    # an earlier, longer run: a state at iteration 7 must not survive into the new run
    shutil.copy(state_files(run)[0], run / "checkpoints/state-00000007.pt")
    (run / "checkpoints/state-00000001.pt.unreadable").write_bytes(b"junk")
    claim_files(run, ["checkpoints/state-00000007.pt", "checkpoints/state-00000001.pt.unreadable"])
    mine = {
        "notes.txt": "keep",
        ".notes.tmp": "keep",
        "eval.json": "{}",
        "tb/my-plot.png": "keep",
        "checkpoints/README": "keep",
        "old/last.safetensors": "keep",
    }
    for rel, text in mine.items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text(text)
    old_best = (run / "best.safetensors").read_bytes()
    # event files are named by second and pid, so the new run's file may reuse the old name:
    # compare contents
    old_events = {p.read_bytes() for p in (run / "tb").glob("events.out.tfevents.*")}
    assert train("--overwrite", "--set", "seed=3") == 0
    err = capsys.readouterr().err
    assert "--overwrite: deleted" in err
    for rel, text in mine.items():
        assert (run / rel).read_text() == text, rel
    assert [p.name for p in state_files(run)] == ["state-00000002.pt", "state-00000001.pt"]
    assert not list(run.glob("checkpoints/*.unreadable"))
    assert (run / "best.safetensors").read_bytes() != old_best
    assert not old_events & {p.read_bytes() for p in (run / "tb").glob("events.out.tfevents.*")}
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in lines if "loss" in r] == [1, 2]
    assert yaml.safe_load((run / "config.yaml").read_text())["seed"] == 3
    assert not (run / ".facd.lock").exists()


def test_overwrite_refuses_to_delete_the_weights_it_starts_from(case, capsys):
    before = snapshot(case / "run")
    assert train("--overwrite", "--set", "student.weights=run/best.safetensors") == 2
    line = error_line(capsys)
    assert "'student.weights' run/best.safetensors is inside --out run" in line
    assert snapshot(case / "run") == before


def test_a_refused_run_leaves_no_folder_behind(case, capsys):
    assert train("--set", "train.iterations=0", out="fresh") == 2
    capsys.readouterr()
    assert not (case / "fresh").exists()


def test_library_run_follows_the_rules_of_facd_train(case, capsys):
    """``facd.train.run`` is ``facd train``: the same refusals, word for word, with nothing
    written; ``resume`` continues and ``overwrite`` starts again, keeping the user's files."""
    from facd.errors import ConfigError
    from facd.train import run as train_run
    from facd.train.rundir import RunDirBusy, RunLock

    run = case / "run"
    before = snapshot(run)
    refusals = [
        ((), {}),  # a folder holding a finished run
        (("--overwrite", "--set", "student.weights=run/best.safetensors"), {"overwrite": True}),
        (("--resume", "--overwrite"), {"resume": True, "overwrite": True}),
    ]
    for flags, kwargs in refusals:
        assert train(*flags) == 2
        cli_line = error_line(capsys)
        overrides = [flags[i + 1] for i, f in enumerate(flags) if f == "--set"]
        with pytest.raises(ConfigError) as err:
            train_run("cfg.yaml", "run", overrides=overrides, progress=False, **kwargs)
        assert cli_line == f"facd train: error: {err.value}"
        assert snapshot(run) == before
    with pytest.raises(ConfigError, match="is the config.yaml that facd train writes"):
        train_run(run / "config.yaml", "run", resume=True, progress=False)
    with RunLock(run), pytest.raises(RunDirBusy, match="being written"):
        train_run("cfg.yaml", "run", resume=True, progress=False)
    config = yaml.safe_load(Path("cfg.yaml").read_text())  # a mapping works as the file does
    config["train"]["iterations"] = 3
    assert train_run(config, "run", resume=True, progress=False)["iteration"] == 3
    assert [p.name for p in state_files(run)][0] == "state-00000003.pt"
    (run / "notes.txt").write_text("mine")
    train_run("cfg.yaml", "run", overwrite=True, progress=False)
    assert [p.name for p in state_files(run)][0] == "state-00000002.pt"
    assert (run / "notes.txt").read_text() == "mine" and not (run / ".facd.lock").exists()


# ------------------------------------------------------------------ temporary files


def test_atomic_writes_use_recognisable_temporary_names(tmp_path):
    with fileio.atomic_path(tmp_path / "last.safetensors") as tmp:
        assert fileio.is_facd_temp(tmp.name), tmp.name
    assert not fileio.is_facd_temp(".notes.tmp")
    assert not fileio.is_facd_temp(".notes.abcdefgh.tmp")


def test_resume_deletes_only_facds_temporary_files(case, capsys):
    run = case / "run"
    ours = [
        run / ".last.safetensors.facd-k2j4h5g6.tmp",  # this version's atomic writer
        run / "checkpoints/.state-00000003.pt.facd-x_1y2z3w.tmp",
        run / ".config.yaml.a1b2c3d4.tmp",  # earlier versions: facd's names only
    ]
    theirs = [run / ".notes.tmp", run / ".draft.a1b2c3d4.tmp", run / "checkpoints/.mine.tmp"]
    for p in ours + theirs:
        p.write_text("x")
    assert train("--resume", "--set", "train.iterations=3") == 0
    assert [p for p in ours if p.exists()] == []
    assert [p for p in theirs if p.exists()] == theirs


# ------------------------------------------------------------------ one writer


def test_a_second_writer_is_refused_with_the_holders_pid(case, capsys):
    """The lock is held by another process; a SIGKILL of that process releases it."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from facd.train.rundir import RunLock; RunLock('run').acquire(); "
         "print('locked', flush=True); time.sleep(600)"],
        cwd=case, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = snapshot(case / "run")
        assert train("--resume", "--set", "train.iterations=3") == 2
        line = error_line(capsys)
        assert f"run is being written by another facd train (pid {holder.pid})" in line
        assert snapshot(case / "run") == before
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert train("--resume", "--set", "train.iterations=3") == 0  # released by the OS


# ------------------------------------------------------------------ full disk


def _full_disk(path, data: bytes) -> None:
    with fileio.atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_reports_the_state_write_not_the_tensorboard_close(case, capsys, monkeypatch):
    """The disk fills at a state write; the TensorBoard writer then fails to flush and close."""
    from tensorboardX.event_file_writer import EventsWriter

    from facd.train import state

    real_flush = EventsWriter.flush
    full = {"now": False}

    def flush(self):
        if full["now"]:
            _enospc()
        return real_flush(self)

    def save_on_full_disk(path, data):
        full["now"] = True
        _full_disk(path, data)

    monkeypatch.setattr(EventsWriter, "flush", flush)
    monkeypatch.setattr(EventsWriter, "close", lambda self: _enospc())
    monkeypatch.setattr(state, "atomic_write_bytes", save_on_full_disk)
    assert train("--resume", "--set", "train.iterations=4") == 4
    line = error_line(capsys)
    assert "cannot write run/checkpoints/state-00000003.pt: No space left on device" in line


def test_disk_full_at_a_tensorboard_write_is_a_storage_error(case, capsys, monkeypatch):
    from tensorboardX.event_file_writer import EventsWriter

    monkeypatch.setattr(EventsWriter, "flush", lambda self: _enospc())
    monkeypatch.setattr(EventsWriter, "close", lambda self: _enospc())
    assert train("--resume", "--set", "train.iterations=4") == 4
    line = error_line(capsys)
    assert "cannot write run/tb/events.out.tfevents." in line
    assert line.endswith(": No space left on device")


# ------------------------------------------------------------------ metrics after a resume


def test_metrics_line_after_a_resume_averages_only_the_iterations_it_covers(case, capsys):
    """Logged every 2 iterations, stopped at 3, resumed to 6: the line at 4 averages one step."""
    sets = ["--set", "train.log_every=1", "--set", "train.iterations=6"]
    assert train(*sets, out="ref") == 0
    per_step = {
        r["iteration"]: r["loss"]
        for r in map(json.loads, (case / "ref/metrics.jsonl").read_text().splitlines())
        if "loss" in r
    }
    assert train("--set", "train.log_every=2", "--set", "train.iterations=3", out="two") == 0
    assert train("--resume", "--set", "train.log_every=2", "--set", "train.iterations=6",
                 out="two") == 0  # fmt: skip
    capsys.readouterr()
    lines = {
        r["iteration"]: r
        for r in map(json.loads, (case / "two/metrics.jsonl").read_text().splitlines())
        if "loss" in r
    }
    assert sorted(lines) == [2, 3, 4, 6]
    assert [lines[i]["iterations_averaged"] for i in (2, 3, 4, 6)] == [2, 1, 1, 2]
    assert lines[4]["loss"] == pytest.approx(per_step[4], rel=1e-6)
    assert lines[6]["loss"] == pytest.approx((per_step[5] + per_step[6]) / 2, rel=1e-6)


# ------------------------------------------------------------------ facd reproduce


def _protocol(tmp: Path, iterations: int) -> Path:
    """The CI-sized protocol of the reproduction tests, one scratch run, a long schedule."""
    rows = [{"method": "scratch", "seeds": [0]}]
    schedule = {"iters_per_epoch": 10, "lr_milestones": [100000], "log_every": 10, "save_every": 10}
    return ci_protocol(tmp, rows, iterations, val_every=0, **schedule)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
def test_killed_reproduce_resumes_its_run_in_the_next_sitting(tmp_path):
    """SIGKILL ``facd reproduce`` while it trains; its ``facd train`` dies with it (else it
    would hold the run folder's lock); the next sitting continues the run from its state."""
    iterations = 100000
    proto = _protocol(tmp_path, iterations)
    out = tmp_path / "runs"
    run = out / "scratch-s0"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FACD_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "facd", "reproduce", str(proto), "--out", str(out),
           "--jobs", "1", "--no-report"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while latest_state_path(run) is None:
        assert proc.poll() is None, "reproduce ended early"
        assert time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while (run / ".facd.lock").exists() and _locked(run) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _locked(run), "the training subprocess outlived facd reproduce"
    stopped = int(json.loads((run / "checkpoints/latest.json").read_text())["iteration"])
    assert stopped >= 10

    # the next sitting, with a reachable end: the run continues where it stopped
    doc = yaml.safe_load(proto.read_text())
    doc["shared"]["train"]["iterations"] = stopped + 10
    proto.write_text(yaml.safe_dump(doc))
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    log = (out / "logs" / "scratch-s0.log").read_text()
    assert f"resumed from iteration {stopped}" in log
    assert json.loads((tmp_path / "results" / "scratch-s0.json").read_text())["iterations"] == (
        stopped + 10
    )


def _locked(run: Path) -> bool:
    """Whether some process holds the run folder's lock (tried without taking it for long)."""
    from facd.train.rundir import RunDirBusy, RunLock

    try:
        lock = RunLock(run).acquire()
    except RunDirBusy:
        return True
    lock.release()
    return False
