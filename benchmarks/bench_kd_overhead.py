"""Overhead of one FACD training step over (teacher forward + plain student L1 step).

All three are timed on the same batch, in one process, as the median process CPU time of
``--repeats`` runs after a warm-up (CPU time, because wall time on a shared machine is noisy):

- ``teacher``: the frozen teacher's forward under ``no_grad``;
- ``student``: a plain L1-to-GT training step of the student (forward, backward, Adam);
- ``facd``: the full FACD step of the trainer (teacher forward with taps, student forward with
  taps, indicator, L_SR, deep regressors, contrastive loss, backward, Adam).

    python benchmarks/bench_kd_overhead.py                       # paper EDSR pair, x4
    python benchmarks/bench_kd_overhead.py --teacher rcan-t --student rcan-s
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def timed(fn, repeats: int) -> float:
    """Median process CPU time of ``fn`` (less sensitive than wall time to other processes)."""
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default="edsr-t")
    p.add_argument("--student", default="edsr-s")
    p.add_argument("--method", default="facd")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--patch", type=int, default=24, help="LR patch size")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: steadiest timing)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="config override, e.g. --set loss.contrast.regressor_width=64",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from facd.archs import build_model, preset_spec
    from facd.archs.io import save_model
    from facd.train.config import load_config
    from facd.train.trainer import Trainer

    torch.manual_seed(0)
    lr = torch.rand(args.batch, 3, args.patch, args.patch)
    hr = torch.rand(args.batch, 3, args.patch * args.scale, args.patch * args.scale)
    with tempfile.TemporaryDirectory() as tmp:
        tspec = preset_spec(args.teacher, args.scale)
        tpath = Path(tmp) / "teacher.safetensors"
        save_model(tpath, build_model(tspec), tspec)
        rcfg = load_config(
            None,
            [
                f"method={args.method}",
                f"scale={args.scale}",
                f"student.preset={args.student}",
                f"teacher.preset={args.teacher}",
                f"teacher.weights={tpath}",
                f"train.batch_size={args.batch}",
                *args.overrides,
            ],
        )
        trainer = Trainer(rcfg, Path(tmp) / "run")
        teacher = trainer.teacher
        student = build_model(preset_spec(args.student, args.scale))
        opt = torch.optim.Adam(student.parameters(), lr=2e-4)

        def teacher_fwd() -> None:
            with torch.no_grad():
                teacher(lr)

        def student_step() -> None:
            loss = (student(lr) - hr).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        def facd_step() -> None:
            trainer.train_step(lr, hr)

        t_teacher = timed(teacher_fwd, args.repeats)
        t_student = timed(student_step, args.repeats)
        t_facd = timed(facd_step, args.repeats)
    base = t_teacher + t_student
    print(
        f"{args.method} step vs teacher forward + student L1 step: {args.teacher} -> {args.student} "
        f"x{args.scale}, batch {args.batch}, LR patch {args.patch}, threads {torch.get_num_threads()}"
        + (f", {' '.join(args.overrides)}" if args.overrides else "")
    )
    print(f"{'part':<28} {'CPU s':>9} {'ratio to sum':>13}")
    for name, t in [
        ("teacher forward", t_teacher),
        ("student L1 step", t_student),
        ("sum (the floor)", base),
        (f"{args.method} training step", t_facd),
    ]:
        print(f"{name:<28} {t:>9.3f} {t / base:>13.3f}")
    print(f"overhead beyond the sum: {100 * (t_facd / base - 1):+.1f} % (target <= +10 %)")


if __name__ == "__main__":
    main()
