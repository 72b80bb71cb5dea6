"""Evaluation throughput of the bicubic baseline on the benchmark sets.

Usage (from the repository root)::

    python benchmarks/bench_eval.py --scale 4 [--sets Set5 Set14 B100 Urban100]
        [--data-root ../shared/data] [--no-breakdown]

For each set it times ``facd.evaluate.evaluate("bicubic", ...)`` end to end (read PNG, LR from
file or MATLAB-bicubic from HR, bicubic x s, PSNR + SSIM on Y) and prints images/s and MPix/s
(output pixels). A second pass splits the time into its stages (LR rebuilding is cached after the
first pass, so the breakdown re-times it explicitly).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from facd.data.benchmark import BenchmarkSet
from facd.data.image_io import read_image_raw
from facd.data.imresize import bicubic_downsample, bicubic_upsample
from facd.evaluate import evaluate
from facd.metrics import psnr_y, ssim_y


def end_to_end(root: Path, name: str, scale: int) -> tuple[float, int, float]:
    """(seconds, images, output megapixels) of one ``evaluate`` call on one set."""
    bench = BenchmarkSet(root, name, scale)
    mpix = sum(
        (h // scale * scale) * (w // scale * scale) / 1e6
        for h, w in (read_image_raw(p).shape[:2] for p in bench.hr_paths)
    )
    t0 = time.perf_counter()
    evaluate("bicubic", [name], scale, root, "cpu", progress=False)
    return time.perf_counter() - t0, len(bench), mpix


def breakdown(root: Path, name: str, scale: int) -> dict[str, float]:
    """Seconds per stage over the set: read, LR (file or rebuilt), upsample, PSNR, SSIM."""
    bench = BenchmarkSet(root, name, scale)
    t = dict.fromkeys(("read", "lr", "upsample", "psnr", "ssim"), 0.0)
    for path in bench.hr_paths:
        t0 = time.perf_counter()
        hr_full = read_image_raw(path)
        t1 = time.perf_counter()
        lr_path = bench.lr_path(path.stem)
        lr = read_image_raw(lr_path) if lr_path.is_file() else bicubic_downsample(hr_full, scale)
        lr = lr if lr.ndim == 3 else np.repeat(lr[:, :, None], 3, axis=2)
        t2 = time.perf_counter()
        sr = bicubic_upsample(lr, scale)
        t3 = time.perf_counter()
        h, w = sr.shape[:2]
        hr = hr_full[:h, :w]
        psnr_y(sr, hr, scale)
        t4 = time.perf_counter()
        ssim_y(sr, hr, scale)
        t5 = time.perf_counter()
        for key, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            t[key] += dt
    return t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--sets", nargs="+", default=["Set5", "Set14", "B100", "Urban100"])
    default_root = os.environ.get("FACD_DATA_ROOT", str(Path("..") / "shared" / "data"))
    parser.add_argument("--data-root", type=Path, default=Path(default_root))
    parser.add_argument("--no-breakdown", action="store_true")
    args = parser.parse_args()

    print(f"# bicubic evaluation, x{args.scale}, CPU, torch threads={torch.get_num_threads()}")
    print(f"{'set':<10}{'images':>7}{'MPix':>8}{'seconds':>9}{'img/s':>8}{'MPix/s':>8}")
    totals = [0.0, 0, 0.0]
    for name in args.sets:
        sec, n, mpix = end_to_end(args.data_root, name, args.scale)
        totals = [totals[0] + sec, totals[1] + n, totals[2] + mpix]
        print(f"{name:<10}{n:>7}{mpix:>8.2f}{sec:>9.2f}{n / sec:>8.2f}{mpix / sec:>8.2f}")
        sys.stdout.flush()
    sec, n, mpix = totals
    print(f"{'all':<10}{n:>7}{mpix:>8.2f}{sec:>9.2f}{n / sec:>8.2f}{mpix / sec:>8.2f}")
    if args.no_breakdown:
        return 0
    print("\n# seconds per stage (second pass)")
    print(f"{'set':<10}{'read':>8}{'LR':>8}{'upscale':>9}{'PSNR':>8}{'SSIM':>8}")
    for name in args.sets:
        t = breakdown(args.data_root, name, args.scale)
        print(
            f"{name:<10}{t['read']:>8.2f}{t['lr']:>8.2f}{t['upsample']:>9.2f}"
            f"{t['psnr']:>8.2f}{t['ssim']:>8.2f}"
        )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
