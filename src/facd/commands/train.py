"""``facd train CONFIG --out RUN_DIR [--set key=value ...] [--resume] [--nproc K]``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HELP = "train a teacher, or distil a student from a teacher"

# Keys that may change between a run and its resumption.
RESUMABLE_CHANGES = (
    "train.iterations",
    "train.log_every",
    "train.save_every",
    "train.device",
    "train.keep_checkpoints",
    "train.nan_policy",
    "train.max_skips",
    "train.compile",
    "train.channels_last",
    "data.num_workers",
    "val.",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="YAML config (see configs/ and docs/config.md)")
    p.add_argument("--out", type=Path, help="run directory")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train.iterations=1000 (repeatable)",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the run directory's latest checkpoint"
    )
    p.add_argument("--nproc", type=int, default=0, help="launch K processes with torchrun (DDP)")
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        help="shortcut for --set train.precision=... (autocast; fp16 adds a GradScaler)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--schema", action="store_true", help="print the config's JSON schema and exit")


def run(args: argparse.Namespace) -> int:
    from facd.errors import ConfigError

    if args.schema:
        from facd.train.config import config_schema

        print(json.dumps(config_schema(), indent=2))
        return 0
    if args.config is None or args.out is None:
        raise ConfigError("facd train needs CONFIG and --out RUN_DIR")
    if args.precision:
        args.overrides = [*args.overrides, f"train.precision={args.precision}"]
        args.precision = None
    if args.nproc and args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        _prepare(args)  # a bad config or run folder fails once, here, not in every process
        return _launch_torchrun(args)
    return _train(args)


def _prepare(args: argparse.Namespace):
    """Load and check the config and the run folder; returns the resolved config."""
    from facd.errors import ConfigError
    from facd.train.config import load_config
    from facd.train.state import has_state

    rcfg = load_config(args.config, args.overrides)
    run_dir: Path = args.out
    saved = run_dir / "config.yaml"
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir} exists and is not a folder")
    if has_state(run_dir) and not args.resume:
        raise ConfigError(
            f"{run_dir} already holds a training state; pass --resume to continue it, "
            "or choose another --out"
        )
    if args.resume and saved.is_file():
        _check_resumable(saved, rcfg.to_dict())
    return rcfg


def _train(args: argparse.Namespace) -> int:
    from facd.train.distributed import init_distributed, shutdown
    from facd.train.loop import run_training

    rcfg = _prepare(args)
    run_dir: Path = args.out
    dist_ctx = init_distributed(rcfg.config.train.device)
    try:
        # config.yaml is written by run_training once the set-up has succeeded
        summary = run_training(
            rcfg, run_dir, resume=args.resume, dist_ctx=dist_ctx, progress=not args.no_progress
        )
    finally:
        shutdown(dist_ctx)
    if dist_ctx.is_main:
        val = summary.get("val") or {}
        for name, m in val.items():
            print(f"{name}: Y-PSNR {m['psnr_y']:.3f} dB, SSIM {m['ssim_y']:.4f}")
        print(f"student weights: {run_dir / 'last.safetensors'}")
    return 0


def _check_resumable(saved: Path, new: dict) -> None:
    import yaml

    from facd.errors import ConfigError

    try:
        old = yaml.safe_load(saved.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        old = None
    if not isinstance(old, dict):
        raise ConfigError(
            f"{saved} is damaged; restore it (or delete it to skip the check that the "
            "resumed config matches)"
        )
    diffs = [k for k in _diff(old, new) if not k.startswith(RESUMABLE_CHANGES)]
    if diffs:
        raise ConfigError(
            f"--resume with a config that differs from {saved} in {', '.join(diffs[:5])}; "
            f"only {', '.join(k.rstrip('.') for k in RESUMABLE_CHANGES)} may change"
        )


def _diff(a: object, b: object, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def _launch_torchrun(args: argparse.Namespace) -> int:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={args.nproc}",
        "-m",
        "facd",
        "train",
        args.config,
        "--out",
        str(args.out),
    ]
    for item in args.overrides:
        cmd += ["--set", item]
    if args.resume:
        cmd.append("--resume")
    if args.no_progress:
        cmd.append("--no-progress")
    return _run_forwarding_signals(cmd, args.out)


def _run_forwarding_signals(cmd: list[str], run_dir: Path) -> int:
    """Run torchrun; pass SIGTERM/SIGUSR1 (pre-emption) on to it as SIGTERM.

    torchrun sends SIGTERM to every worker, which saves a checkpoint and exits 0; torchrun itself
    then exits non-zero. A pre-empted run counts as a clean stop (0) when a state newer than the
    signal is on disk.
    """
    from facd.train.state import latest_state_path

    proc = subprocess.Popen(cmd)
    signalled: list[float] = []

    def forward(_signum: int, _frame: object) -> None:
        signalled.append(time.time())
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)

    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGUSR1)}
    # Ctrl-C reaches torchrun and the workers directly; wait for them to shut down
    old[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = proc.wait()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if signalled and code != 0:
        state = latest_state_path(run_dir)
        if state is not None and state.stat().st_mtime >= signalled[0] - 1.0:
            print(
                f"facd train: stopped by a signal; checkpoint {state} saved, continue with --resume",
                file=sys.stderr,
            )
            return 0
    return code
