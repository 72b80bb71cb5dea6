"""``facd train CONFIG --out RUN_DIR [--set key=value ...] [--resume | --overwrite] [--nproc K]``.

One process writes a run folder at a time (a lock, see :mod:`facd.train.rundir`). With
``--nproc K`` this process is a launcher: it holds the lock, starts torchrun in a session of its
own and ties torchrun's and the ranks' lifetime to its own (a SIGKILLed launcher leaves no
process behind). Ctrl-C reaches only the launcher, which passes it on; the ranks stop at one
iteration, rank 0 saves a checkpoint, and the launcher exits 130.
"""

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
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start a new run in a folder that holds an earlier run: its facd files (weights, "
        "states, logs, config.yaml) are deleted, every other file is kept",
    )
    p.add_argument("--nproc", type=int, default=0, help="launch K processes with torchrun (DDP)")
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16", "fp16"],
        help="shortcut for --set train.precision=... (autocast; fp16 adds a GradScaler)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--plugin",
        dest="plugins",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (it registers methods or loss terms; see docs/extending.md)",
    )
    p.add_argument("--schema", action="store_true", help="print the config's JSON schema and exit")


def run(args: argparse.Namespace) -> int:
    from facd.errors import ConfigError

    import_plugins(args.plugins)
    if args.schema:
        from facd.train.config import config_schema

        print(json.dumps(config_schema(), indent=2))
        return 0
    if args.config is None or args.out is None:
        raise ConfigError("facd train needs CONFIG and --out RUN_DIR")
    from facd.fileio import check_name_length

    check_name_length(args.out, "--out")
    if args.precision:
        args.overrides = [*args.overrides, f"train.precision={args.precision}"]
        args.precision = None
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite exclude each other; pass one of them")
    if args.nproc and args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        from facd.train.rundir import RunLock

        with RunLock(args.out):  # held while the ranks run; they know it from the environment
            _prepare(args)  # bad input fails once, here, not in every rank
            return _launch_torchrun(args)
    return _train(args)


def import_plugins(modules: list[str]) -> None:
    """Import the modules of ``--plugin`` (they register methods and terms when imported)."""
    import importlib

    from facd.errors import ConfigError

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ConfigError(
                f"--plugin {name}: cannot import it ({err}); put its folder on PYTHONPATH"
            ) from None


def _prepare(args: argparse.Namespace) -> None:
    """The launcher's checks, before any rank starts: those of :func:`facd.train.run` and what
    the ranks would otherwise each report (:func:`facd.train.launchcheck.check_before_launch`)."""
    from facd.train import prepare
    from facd.train.launchcheck import check_before_launch

    rcfg = prepare(
        args.config,
        args.out,
        resume=args.resume,
        overwrite=args.overwrite,
        overrides=args.overrides,
    )
    check_before_launch(rcfg, args.nproc)


def _train(args: argparse.Namespace) -> int:
    from facd.train import run as train_run
    from facd.train.distributed import end_launched_rank
    from facd.train.rundir import watch_launcher

    run_dir: Path = args.out
    # a rank of `facd train --nproc`: gone as soon as the launcher is (no orphan keeps writing)
    stop_watchdog = watch_launcher() if "WORLD_SIZE" in os.environ else None
    summary = train_run(
        args.config,
        run_dir,
        resume=args.resume,
        overwrite=args.overwrite,
        overrides=args.overrides,
        progress=not args.no_progress,
        stop_on_sigint=stop_watchdog is not None,
    )
    if os.environ.get("RANK", "0") == "0":  # the main process reports
        val = summary.get("val") or {}
        for name, m in val.items():
            print(f"{name}: Y-PSNR {m['psnr_y']:.3f} dB, SSIM {m['ssim_y']:.4f}")
        print(f"student weights: {run_dir / 'last.safetensors'}")
    if stop_watchdog is not None:  # a finished rank of `facd train --nproc`: see the function
        end_launched_rank(stop_watchdog)
    return 0


def _launch_torchrun(args: argparse.Namespace) -> int:
    cmd = [
        sys.executable,
        "-c",
        "from facd.commands.train import torchrun_main; raise SystemExit(torchrun_main())",
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
    for module in args.plugins:
        cmd += ["--plugin", module]
    if args.resume:
        cmd.append("--resume")
    if args.overwrite:
        cmd.append("--overwrite")
    if args.no_progress:
        cmd.append("--no-progress")
    return _run_forwarding_signals(cmd, args.out)


def torchrun_main() -> int:
    """torchrun, without its traceback when a signal stops it (the launcher reports instead)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.run import main

    try:
        main()
    except SignalException as err:
        return 128 + int(err.sigval)
    return 0


def _run_forwarding_signals(cmd: list[str], run_dir: Path) -> int:
    """Run torchrun; pass SIGTERM/SIGUSR1 (pre-emption) on to it as SIGTERM, and Ctrl-C as SIGINT.

    torchrun sends the signal to every rank, which saves a checkpoint and exits 0; torchrun itself
    then exits non-zero. A pre-empted run counts as a clean stop (0) when a state newer than the
    signal is on disk; an interrupted one (Ctrl-C, SIGINT) exits 130. torchrun runs in a session
    of its own, so a Ctrl-C in the terminal reaches only this process, which passes it on once (a
    second Ctrl-C kills torchrun, and the ranks follow it). torchrun dies with this process
    (PR_SET_PDEATHSIG on Linux), and the ranks watch this process's pid.
    """
    from facd.train.rundir import die_with_parent, launcher_env
    from facd.train.state import latest_state_path

    env = {**os.environ, **launcher_env(run_dir)}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, preexec_fn=die_with_parent)
    signalled: list[float] = []
    interrupted: list[float] = []

    def forward(_signum: int, _frame: object) -> None:
        signalled.append(time.time())
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)

    def interrupt(_signum: int, _frame: object) -> None:
        interrupted.append(time.time())
        with contextlib.suppress(ProcessLookupError):
            if len(interrupted) == 1:
                proc.send_signal(signal.SIGINT)
            else:
                proc.kill()

    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGUSR1)}
    old[signal.SIGINT] = signal.signal(signal.SIGINT, interrupt)
    try:
        code = proc.wait()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    first = min(signalled + interrupted, default=None)
    state = latest_state_path(run_dir)
    saved = first is not None and state is not None and state.stat().st_mtime >= first - 1.0
    if interrupted:
        where = f"; checkpoint {state} saved, continue with --resume" if saved else ""
        print(f"facd train: interrupted{where}", file=sys.stderr)
        return 130
    if signalled and code != 0 and saved:
        print(
            f"facd train: stopped by a signal; checkpoint {state} saved, continue with --resume",
            file=sys.stderr,
        )
        return 0
    return code
