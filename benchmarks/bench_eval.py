"""Evaluation throughput of the bicubic baseline, or of a network, on the benchmark sets.

Usage (from the repository root)::

    python benchmarks/bench_eval.py --scale 4 [--sets Set5 Set14 B100 Urban100]
        [--data-root ../shared/data] [--no-breakdown]
    python benchmarks/bench_eval.py --net regime-rcan --max-images 10   # a network, CPU s

``--net regime-rcan`` times ``evaluate`` of an untrained student of
``configs/repro/regime-rcan-x4.yaml`` (the cost does not depend on the weights) in CPU seconds
with one thread, as a protocol's final evaluation runs, split into the network's forward
(``super_resolve``), the metrics (``_score``: Y planes, PSNR, SSIM) and the rest (reading the
images, the LR files); each set cut to ``--max-images`` images (0: all) and scaled to its size.

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


REGIME_RCAN = {"arch": "rcan", "n_groups": 3, "n_blocks": 2, "n_feats": 24}


def network_eval(root: Path, name: str, scale: int, max_images: int) -> dict[str, float]:
    """CPU seconds of ``evaluate`` of the regime RCAN student on one set, by part, scaled to
    the whole set when it is cut to ``max_images``."""
    import facd.evaluate as ev
    from facd.archs import build_model
    from facd.train.netconfig import NetConfig
    from facd.typedconfig import from_dict

    torch.manual_seed(0)
    model = build_model(from_dict(NetConfig, REGIME_RCAN).spec(scale)).eval()
    bench = BenchmarkSet(root, name, scale)
    full = len(bench)
    if max_images:
        bench.hr_paths = bench.hr_paths[:max_images]
    spent = {"forward": 0.0, "metrics": 0.0}
    originals = {"forward": ev.super_resolve, "metrics": ev._score}

    def timed(part: str):
        def call(*args, **kwargs):
            t0 = time.process_time()
            try:
                return originals[part](*args, **kwargs)
            finally:
                spent[part] += time.process_time() - t0

        return call

    ev.super_resolve, ev._score = timed("forward"), timed("metrics")  # type: ignore[assignment]
    try:
        t0 = time.process_time()
        ev.evaluate(model, [bench], scale, root, "cpu", progress=False)
        total = time.process_time() - t0
    finally:
        ev.super_resolve, ev._score = originals["forward"], originals["metrics"]  # type: ignore[assignment]
    factor = full / len(bench)
    out = {k: v * factor for k, v in spent.items()}
    out["rest"] = total * factor - out["forward"] - out["metrics"]
    out["total"] = total * factor
    return out


def network_main(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    print(f"# evaluate() of the regime RCAN student {REGIME_RCAN}, x{args.scale}, CPU s, 1 thread")
    print(f"{'set':<10}{'forward':>9}{'metrics':>9}{'rest':>8}{'total':>8}")
    sums: dict[str, float] = {}
    for name in args.sets:
        t = network_eval(args.data_root, name, args.scale, args.max_images)
        sums = {k: sums.get(k, 0.0) + v for k, v in t.items()}
        print(
            f"{name:<10}{t['forward']:>9.2f}{t['metrics']:>9.2f}{t['rest']:>8.2f}{t['total']:>8.2f}"
        )
        sys.stdout.flush()
    t = sums
    print(f"{'all':<10}{t['forward']:>9.2f}{t['metrics']:>9.2f}{t['rest']:>8.2f}{t['total']:>8.2f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--net", choices=["regime-rcan"], help="time a network, not bicubic")
    parser.add_argument("--max-images", type=int, default=0, help="with --net: images per set")
    parser.add_argument("--sets", nargs="+", default=["Set5", "Set14", "B100", "Urban100"])
    default_root = os.environ.get("FACD_DATA_ROOT", str(Path("..") / "shared" / "data"))
    parser.add_argument("--data-root", type=Path, default=Path(default_root))
    parser.add_argument("--no-breakdown", action="store_true")
    args = parser.parse_args()
    if args.net:
        return network_main(args)

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
