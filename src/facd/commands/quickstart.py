"""``facd quickstart``: distil, evaluate and compare a small student, offline, in minutes."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/quickstart"), help="output folder")
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder of HR images to train on (default: scikit-image's bundled photos)",
    )
    p.add_argument("--iterations", type=int, default=400, help="distillation iterations")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from facd.quickstart import format_table, run_quickstart

    out = run_quickstart(args.out, args.data, args.iterations, progress=not args.no_progress)
    print(format_table(out["results"]))
    print(f"comparison image: {out['figure']}")
    print(f"student weights:  {out['student']}")
    return 0
