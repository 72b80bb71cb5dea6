"""GPU smoke test: the paper's EDSR x4 FACD config for a few hundred steps, fp32 and bf16.

What it runs, for each precision (channels_last on):

* ``configs/paper/edsr-x4-facd.yaml`` (EDSR-baseline student from the EDSR teacher, batch 16,
  LR patch 48) through the real ``facd.train.loop.run_training``, for ``--iterations`` steps on a
  folder of HR training images;
* the final validation on Set5 that every training run does (Y-PSNR, benchmark protocol).

What it prints: one table row per precision with the mean milliseconds per step after the first
logging window (warm-up, cuDNN autotuning), the ratio to the 30 ms target, the peak GPU memory
(``torch.cuda.max_memory_allocated``) and the Set5 Y-PSNR. The Set5 number only shows that
evaluation ran: the teacher is randomly initialised (the official EDSR weights cannot be
downloaded on a closed machine; cost does not depend on the weights) and a few hundred steps
train nothing.

``--dry-run`` runs the same path on the CPU with the tiny presets, 4 steps and one Set5 image,
so that CI checks the script without a GPU. Training images: ``--train-dir`` (repeatable), else
the 291 images under ``--data-root``, else 16 synthetic images.

    bash benchmarks/gpu_smoke.sh                    # on a GPU machine, < 5 minutes
    bash benchmarks/gpu_smoke.sh --dry-run          # CPU, seconds
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "paper" / "edsr-x4-facd.yaml"
TARGET_MS = 30.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny presets, 4 steps")
    p.add_argument("--iterations", type=int, default=300, help="training steps per precision")
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--train-dir", action="append", default=[], help="folder of HR images")
    p.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--workers", type=int, default=8, help="data-loading processes")
    p.add_argument("--json", default=None, help="also write the rows as JSON")
    return p.parse_args(argv)


def synthetic_images(folder: Path, count: int = 16, size: int = 256) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        coarse = rng.random((size // 16 + 1, size // 16 + 1, 3))
        img = np.kron(coarse, np.ones((16, 16, 1)))[:size, :size]
        Image.fromarray((img * 255).astype(np.uint8)).save(folder / f"synthetic{i:02d}.png")
    return folder


def train_dirs(args: argparse.Namespace, work: Path) -> tuple[list[str], str]:
    if args.train_dir:
        return list(args.train_dir), "given folders"
    root = Path(args.data_root)
    found = [str(root / n / "HR") for n in ("T91", "BSD200") if (root / n / "HR").is_dir()]
    if found:
        return found, "T91 + BSD200"
    return [str(synthetic_images(work / "synthetic"))], "16 synthetic images"


def random_teacher(path: Path, preset: str) -> str:
    import torch

    from facd.archs import build_model, preset_spec
    from facd.archs.io import save_model

    torch.manual_seed(0)
    spec = preset_spec(preset, 4)
    save_model(path, build_model(spec), spec)
    return str(path)


def run_one(args: argparse.Namespace, precision: str, work: Path, dirs: list[str]) -> dict:
    import torch

    from facd.train.config import load_config
    from facd.train.loop import run_training

    cuda = not args.dry_run
    teacher_preset = "edsr-tiny-t" if args.dry_run else "edsr-t"
    teacher = random_teacher(work / f"teacher-{teacher_preset}.safetensors", teacher_preset)
    iterations = 4 if args.dry_run else args.iterations
    log_every = 2 if args.dry_run else 50
    has_set5 = (Path(args.data_root) / "Set5" / "HR").is_dir()
    overrides = [
        f"teacher.weights={teacher}",
        f"data.train_dirs={json.dumps(dirs)}",
        f"train.iterations={iterations}",
        f"train.precision={precision}",
        "train.channels_last=true",
        f"train.log_every={log_every}",
        f"train.save_every={iterations}",
        f"train.device={'cuda' if cuda else 'cpu'}",
        f"val.data_root={args.data_root}",
        "val.every=0",
        f"val.sets={'[Set5]' if has_set5 else '[]'}",
        f"data.num_workers={args.workers if cuda else 0}",
    ]
    if args.dry_run:
        overrides += [
            "student.preset=edsr-tiny-s",
            "teacher.preset=edsr-tiny-t",
            "data.patch_size=12",
            "train.batch_size=4",
            "val.max_images=1",
        ]
    rcfg = load_config(CONFIG, overrides)
    run_dir = work / f"run-{precision}"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    summary = run_training(rcfg, run_dir, progress=False)
    wall = time.perf_counter() - started
    records = [
        json.loads(line)
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        if '"it_per_s"' in line
    ]
    rates = [r["it_per_s"] for r in records[1:]] or [r["it_per_s"] for r in records]
    ms = 1000.0 / statistics.mean(rates)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    set5 = (summary.get("val") or {}).get("Set5", {}).get("psnr_y")
    return {
        "precision": precision,
        "iterations": iterations,
        "ms_per_step": ms,
        "target_ms": TARGET_MS,
        "ratio_to_target": ms / TARGET_MS,
        "peak_gpu_mib": peak,
        "set5_psnr_y": set5,
        "wall_s": wall,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print(
            "gpu_smoke: no CUDA device; use --dry-run to check the script on a CPU", file=sys.stderr
        )
        return 2
    device = "CPU (dry run)" if args.dry_run else torch.cuda.get_device_name(0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="facd-gpu-smoke-") as tmp:
        work = Path(tmp)
        dirs, what = train_dirs(args, work)
        print(f"device: {device}; torch {torch.__version__}; config {CONFIG.name}; data: {what}")
        for precision in args.precisions:
            rows.append(run_one(args, precision, work, dirs))
    print()
    print(
        "| precision | steps | ms/step | target | ms/step ÷ target | peak GPU MiB | Set5 Y-PSNR |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        peak = f"{r['peak_gpu_mib']:.0f}" if r["peak_gpu_mib"] is not None else "n/a (CPU)"
        psnr = f"{r['set5_psnr_y']:.2f}" if r["set5_psnr_y"] is not None else "not run"
        print(
            f"| {r['precision']} | {r['iterations']} | {r['ms_per_step']:.1f} | "
            f"{r['target_ms']:.0f} | {r['ratio_to_target']:.2f} | {peak} | {psnr} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"device": device, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
