"""``facd train CONFIG --out RUN_DIR [--set key=value ...] [--resume] [--nproc K]``."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HELP = "train a teacher, or distil a student from a teacher"

# Keys that may change between a run and its resumption.
RESUMABLE_CHANGES = (
    "train.iterations",
    "train.log_every",
    "train.save_every",
    "train.device",
    "train.keep_checkpoints",
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
    if args.nproc and args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return _launch_torchrun(args)
    return _train(args)


def _train(args: argparse.Namespace) -> int:
    from facd.errors import ConfigError
    from facd.fileio import atomic_write_text
    from facd.train.config import load_config
    from facd.train.distributed import init_distributed, shutdown
    from facd.train.loop import run_training
    from facd.train.state import latest_state_path

    rcfg = load_config(args.config, args.overrides)
    run_dir: Path = args.out
    saved = run_dir / "config.yaml"
    has_state = (run_dir / "checkpoints").is_dir() and latest_state_path(run_dir) is not None
    if has_state and not args.resume:
        raise ConfigError(
            f"{run_dir} already holds a training state; pass --resume to continue it, "
            "or choose another --out"
        )
    if args.resume and saved.is_file():
        _check_resumable(saved, rcfg.to_dict())
    dist_ctx = init_distributed(rcfg.config.train.device)
    try:
        if dist_ctx.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(saved, rcfg.to_yaml())
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

    old = yaml.safe_load(saved.read_text())
    diffs = [k for k in _diff(old, new) if not k.startswith(RESUMABLE_CHANGES)]
    if diffs:
        raise ConfigError(
            f"--resume with a config that differs from {saved} in {', '.join(diffs[:5])}; "
            "only iterations, logging, validation and device settings may change"
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
    return subprocess.call(cmd)
