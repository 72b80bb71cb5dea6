"""Time a protocol's final evaluation of one student, the former way and the current way.

    OMP_NUM_THREADS=1 python benchmarks/eval_timing.py STUDENT TEACHER [--sets Urban100]

Former: ``facd.evaluate.evaluate`` writes the student's SR images as PNG, then
``psnr_against`` reads them back and compares them with the teacher's. Current:
``facd.reproduce.evaljob.evaluate_model`` compares each SR image in memory. Prints the seconds
of each and the largest difference of any number between them (it must be below 1e-10).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from facd.archs.io import load_model
from facd.evaluate import evaluate
from facd.reproduce.evaljob import evaluate_model, psnr_against


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("student")
    ap.add_argument("teacher")
    ap.add_argument("--sets", nargs="+", default=["Urban100"])
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--data-root", default="../shared/data")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="facd-eval-timing-"))
    try:
        t0 = time.perf_counter()
        evaluate_model(args.teacher, args.sets, args.scale, args.data_root, keep_sr=tmp / "t")
        print(f"teacher evaluation (writes its SR PNGs): {time.perf_counter() - t0:.1f} s")

        t0 = time.perf_counter()
        model, _ = load_model(args.student, args.scale)
        old = evaluate(model, args.sets, args.scale, args.data_root, device="cpu",
                       save_images=tmp / "s", progress=False)  # fmt: skip
        t1 = time.perf_counter()
        old_t = psnr_against(tmp / "s", tmp / "t", args.sets, args.scale)
        t2 = time.perf_counter()
        print(f"former: evaluate + PNG writes {t1 - t0:.1f} s, teacher PSNR from PNGs "
              f"{t2 - t1:.1f} s, total {t2 - t0:.1f} s")  # fmt: skip

        t0 = time.perf_counter()
        new = evaluate_model(args.student, args.sets, args.scale, args.data_root,
                             teacher_sr=tmp / "t")  # fmt: skip
        print(f"current: evaluate_model {time.perf_counter() - t0:.1f} s (eval_s "
              f"{new['eval_s']}, teacher_psnr_s {new['teacher_psnr_s']})")  # fmt: skip
        worst = 0.0
        for s in args.sets:
            for name, v in old["sets"][s]["per_image"].items():
                for k in ("psnr_y", "ssim_y"):
                    worst = max(worst, abs(v[k] - new["sets"][s]["per_image"][name][k]))
            for name, v in old_t[s]["per_image"].items():
                worst = max(worst, abs(v - new["teacher_psnr"][s]["per_image"][name]))
        print(f"largest difference of any number: {worst:.3g}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
