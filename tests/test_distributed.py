"""Data-parallel training on CPU (gloo): two processes follow the single-process run.

Sampling is a pure function of (seed, iteration, sample index) and rank r takes the r-th
contiguous slice of each global batch, so a 2-process run sees the same samples as a
1-process run with the same global batch; DDP averages the gradients. Measured on CPU: the
logged losses agree to ~2e-8 relative and the final weights to ~6e-8 absolute (float rounding
of the split reductions); the tests assert 1e-6 for both.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from facd.cli import main
from facd.data.patches import TrainPatches
from facd.errors import ConfigError
from facd.train.config import load_config
from facd.train.distributed import DistContext, init_distributed
from facd.train.loop import run_training
from facd.train.state import load_state, state_files
from facd.train.trainer import Trainer

from .helpers import make_checkpoint, make_image_folder

LOSS_RTOL = 1e-6
WEIGHT_ATOL = 1e-6

CONFIG = """\
method: scratch
scale: 2
seed: 1
student: {preset: edsr-tiny-s}
data: {train_dirs: [data], patch_size: 8}
val: {sets: [Tiny], data_root: bench, every: 3}
train: {iterations: 12, batch_size: 4, log_every: 2, save_every: 4, device: cpu}
"""


# FACD: adaptive image loss, feature contrast with student negatives and trained regressors.
CONTRAST_CONFIG = """\
method: facd
scale: 2
seed: 3
student: {preset: edsr-tiny-s}
teacher: {preset: edsr-tiny-t, weights: teacher.safetensors}
data: {train_dirs: [data], patch_size: 8}
val: {sets: [], every: 0}
train: {iterations: 2, batch_size: 4, lr: 1.0e-3, log_every: 1, save_every: 2, device: cpu}
loss: {contrast: {weight: 1.0}}
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    make_image_folder(root / "data", count=3, size=(40, 48))
    make_image_folder(root / "bench/Tiny/HR", count=1, size=(24, 24), seed=5)
    (root / "cfg.yaml").write_text(CONFIG)
    make_checkpoint(root / "teacher.safetensors", "edsr-tiny-t", scale=2, seed=7)
    (root / "contrast.yaml").write_text(CONTRAST_CONFIG)
    return root


# Ranks are forked from a forkserver that imported torch once (seconds saved per process);
# they join the process group through the same environment variables torchrun sets.
_CTX = multiprocessing.get_context("forkserver")


@pytest.fixture(scope="module", autouse=True)
def _forkserver():
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    _CTX.set_forkserver_preload(["torch", "torch._dynamo", "facd.cli", "facd.train.loop"])
    yield
    if old is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = old


def _child(argv: list[str], cwd: str, env: dict[str, str], log: str) -> None:
    os.chdir(cwd)
    os.environ.update(env)
    sys.stdout = sys.stderr = open(log, "w", buffering=1)  # noqa: SIM115
    sys.exit(main(argv))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(
    work: Path, out: str, nproc: int, *extra: str, cfg: str = "cfg.yaml"
) -> list[tuple[int, str]]:
    """Run ``facd train`` as ``nproc`` ranks (env:// rendezvous); returns (exit code, log)."""
    port = free_port()
    argv = ["train", cfg, "--out", out, "--no-progress", *extra]
    procs = []
    for rank in range(nproc):
        env = {"FACD_CACHE": str(work / "cache")}
        if nproc > 1:
            env |= {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(nproc),
                    "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}  # fmt: skip
        log = work / f"{out}.{rank}.{time.monotonic_ns()}.log"
        p = _CTX.Process(target=_child, args=(argv, str(work), env, str(log)))
        p.start()
        procs.append((p, log))
    out_logs = []
    for p, log in procs:
        p.join(300)
        out_logs.append((p.exitcode, log.read_text()))
    return out_logs


def losses(run: Path) -> dict[int, float]:
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["iteration"]: r["loss"] for r in recs if "loss" in r}


def test_two_processes_match_one_and_resume(work):
    (single,) = launch(work, "single", 1)
    assert single[0] == 0, single[1]
    # 2 ranks to 6, 1 process to 8, 2 ranks to 12 (rank-0 validation every 3 iterations):
    # states hold no per-rank data, so the number of processes may change on resume
    steps = [(2, ["--set", "train.iterations=6"]), (1, ["--resume", "--set", "train.iterations=8"]),
             (2, ["--resume"])]  # fmt: skip
    for nproc, extra in steps:
        for code, log in launch(work, "ddp", nproc, *extra):
            assert code == 0, log
    a, b = losses(work / "single"), losses(work / "ddp")
    assert sorted(a) == sorted(b) == list(range(2, 13, 2))
    worst = max(abs(a[i] - b[i]) / abs(a[i]) for i in a)
    wa, wb = load_file(work / "single/last.safetensors"), load_file(work / "ddp/last.safetensors")
    gap = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    print(f"DDP vs single: loss {worst:.2g} relative, weights {gap:.2g} absolute")
    assert worst < LOSS_RTOL, f"loss curves differ by {worst:.3g} relative"
    assert gap < WEIGHT_ATOL, f"weights differ by {gap:.3g}"
    # only rank 0 wrote: one event file per launch, validation logged once per 3 iterations
    run = work / "ddp"
    assert len(list((run / "tb").iterdir())) == 3
    vals = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"val"' in x]
    assert [v["iteration"] for v in vals] == [3, 6, 8, 9, 12]  # 8: the end of a launch
    assert {p.name for p in run.iterdir()} == {
        "config.yaml", "metrics.jsonl", "tb", "checkpoints", "last.safetensors", "best.safetensors",
        ".facd-run.json",
    }  # fmt: skip
    assert [p.name for p in state_files(run)] == ["state-00000012.pt", "state-00000008.pt"]
    assert load_state(state_files(run)[0])["iteration"] == 12


def test_contrastive_negatives_span_the_ranks(work):
    """FACD on 2 gloo ranks (2 samples each) takes the single-process steps on the 4 samples.

    The contrast compares every sample with every other sample of the global batch, so each rank
    gathers the other rank's features (student negatives with their gradients); with per-rank
    negatives the loss and the gradients differ (2 ranks: about 7 % on the loss).
    """
    (single,) = launch(work, "c-single", 1, cfg="contrast.yaml")
    assert single[0] == 0, single[1]
    for code, log in launch(work, "c-ddp", 2, cfg="contrast.yaml"):
        assert code == 0, log
    a, b = losses(work / "c-single"), losses(work / "c-ddp")
    assert sorted(a) == sorted(b) == [1, 2]
    worst = max(abs(a[i] - b[i]) / abs(a[i]) for i in a)
    sa = load_state(state_files(work / "c-single")[0])["model"]
    sb = load_state(state_files(work / "c-ddp")[0])["model"]
    assert any(k.startswith("terms.contrast.regressors") for k in sa)  # regressors are compared
    moved = max(float((sa[k] - sb[k]).abs().max()) for k in sa)
    print(f"contrast DDP vs single: loss {worst:.2g} relative, weights {moved:.2g} absolute")
    assert worst < 1e-5, f"loss curves differ by {worst:.3g} relative"
    assert moved < 1e-5, f"student/regressor weights differ by {moved:.3g}"


def test_launcher_runs_torchrun_and_forwards_sigterm(work):
    """``facd train --nproc 2`` end to end; SIGTERM to it stops both ranks at one iteration."""
    env = {**os.environ, "FACD_CACHE": str(work / "cache"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "facd", "train", "cfg.yaml", "--out", "torchrun", "--nproc", "2",
           "--no-progress", "--set", "train.iterations=100000", "--set", "val.every=0"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=work, env=env, stderr=subprocess.PIPE, text=True)
    run = work / "torchrun"
    deadline = time.monotonic() + 300
    while not state_files(run):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "stopped by a signal; checkpoint" in err and "continue with --resume" in err
    stopped = load_state(state_files(run)[0])["iteration"]
    assert f"stopped by signal at iteration {stopped}; checkpoint saved" in err
    assert stopped < 100000


def test_a_non_main_rank_never_writes(work, tmp_path, monkeypatch):
    """Rank 1's code path, run in-process against a one-member gloo group."""
    monkeypatch.chdir(work)
    monkeypatch.setenv("FACD_CACHE", str(work / "cache"))
    rcfg = load_config("cfg.yaml", ["train.iterations=4", "train.save_every=2", "val.every=2"])
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1
    )
    try:
        summary = run_training(
            rcfg, tmp_path / "run", dist_ctx=DistContext(rank=1, world_size=2), progress=False
        )
    finally:
        dist.destroy_process_group()
    assert summary["iteration"] == 4
    assert not (tmp_path / "run").exists()


def test_rank_slices_make_up_the_global_batch(work):
    def batch(ctx: DistContext) -> tuple[torch.Tensor, torch.Tensor]:
        data = TrainPatches([work / "data"], 2, 8, 6, 10, seed=4,
                            sample_slice=ctx.sample_slice(6), use_cache=False)  # fmt: skip
        return data[7]

    full_lr, full_hr = batch(DistContext())
    parts = [batch(DistContext(rank=r, world_size=3)) for r in range(3)]
    assert torch.equal(torch.cat([p[0] for p in parts]), full_lr)
    assert torch.equal(torch.cat([p[1] for p in parts]), full_hr)


def test_global_batch_must_split_evenly(work, monkeypatch, tmp_path):
    monkeypatch.chdir(work)
    rcfg = load_config("cfg.yaml", ["train.batch_size=5"])
    with pytest.raises(ConfigError, match="'train.batch_size' 5 is not divisible by 2 processes"):
        Trainer(rcfg, tmp_path, DistContext(rank=0, world_size=2))


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"WORLD_SIZE": "2"}, "environment variable RANK is not set; launch with torchrun"),
        ({"WORLD_SIZE": "2", "RANK": "x"}, "environment variable RANK='x' is not an integer"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2 is outside 0..1"),
    ],
)
def test_bad_launch_environment_is_explained(monkeypatch, env, needle):
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        init_distributed("cpu")
