"""Overhead of one FACD training step over (teacher forward + plain student L1 step).

The parts, all on the same batch in one process:

- ``teacher``: the frozen teacher's forward under ``no_grad``;
- ``student``: a plain L1-to-GT training step of the student (forward, backward, Adam);
- ``facd``: the full FACD step of the trainer (teacher forward with taps, student forward with
  taps, indicator, L_SR, deep regressors, contrastive loss, backward, Adam);
- ``facd, plain regressors`` (with ``--compare-plain``): the same step with the regressors run as
  the plain ``nn.Conv2d``/``nn.PReLU`` stack (``DeepRegressor.fast = False``), for an A/B of the
  regressors' fast path under the same load.

Fairness on a shared machine: after one warm-up call of each part, the parts are timed in
``--rounds`` rounds; each round times every part once, in an order rotated from round to round,
so a change in the machine's load hits all parts alike. Each call is timed twice: process CPU
time (``time.process_time``, all threads of this process; insensitive to waiting for a core) and
wall time (``time.perf_counter``). The overhead is the median over rounds of the per-round ratio
``facd / (teacher + student)``, for CPU and wall time separately. The CPU model, thread count and
load average (at start and end) are printed with the table.

    python benchmarks/bench_kd_overhead.py                       # paper EDSR pair, x4
    python benchmarks/bench_kd_overhead.py --compare-plain       # also the plain-conv regressors
    python benchmarks/bench_kd_overhead.py --teacher rcan-t --student rcan-s
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

TARGET = 10.0  # percent


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def timed_call(fn: Callable[[], object]) -> tuple[float, float]:
    """(process CPU seconds, wall seconds) of one call."""
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - w0


def run_rounds(
    parts: dict[str, Callable[[], object]], rounds: int
) -> dict[str, list[tuple[float, float]]]:
    """Warm up each part once, then ``rounds`` rounds with the order rotated by one each round."""
    names = list(parts)
    for name in names:
        parts[name]()
    out: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            out[name].append(timed_call(parts[name]))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default="edsr-t")
    p.add_argument("--student", default="edsr-s")
    p.add_argument("--method", default="facd")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--patch", type=int, default=24, help="LR patch size")
    p.add_argument(
        "--rounds", "--repeats", dest="rounds", type=int, default=5, help="timed rounds (>= 5)"
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: steadiest timing)")
    p.add_argument(
        "--compare-plain",
        action="store_true",
        help="also time the step with the plain nn.Conv2d regressors (fast path off)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="config override, e.g. --set loss.contrast.regressor_width=64",
    )
    args = p.parse_args()
    if args.rounds < 1:
        p.error(f"--rounds is {args.rounds}; use 5 or more")
    torch.set_num_threads(args.threads)

    from facd.archs import build_model, preset_spec
    from facd.archs.io import save_model
    from facd.distill.regressor import DeepRegressor
    from facd.train.config import load_config
    from facd.train.trainer import Trainer

    load_start = load_average()
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
        trainer = Trainer(rcfg, Path(tmp) / "run", log=lambda *a, **k: None)
        teacher = trainer.teacher
        student = build_model(preset_spec(args.student, args.scale))
        opt = torch.optim.Adam(student.parameters(), lr=2e-4)
        regressors = [m for m in trainer.model.modules() if isinstance(m, DeepRegressor)]

        def teacher_fwd() -> None:
            with torch.no_grad():
                teacher(lr)

        def student_step() -> None:
            loss = (student(lr) - hr).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        def facd_step(fast: bool = True) -> None:
            for reg in regressors:
                reg.fast = fast
            trainer.train_step(lr, hr)
            for reg in regressors:
                reg.fast = True

        parts: dict[str, Callable[[], object]] = {
            "teacher forward": teacher_fwd,
            "student L1 step": student_step,
            f"{args.method} training step": facd_step,
        }
        plain_name = f"{args.method} step, plain regressors"
        if args.compare_plain:
            parts[plain_name] = lambda: facd_step(fast=False)
        times = run_rounds(parts, args.rounds)

    names = list(parts)
    t_name, s_name, f_name = names[:3]
    print(
        f"{args.method} step vs teacher forward + student L1 step: {args.teacher} -> {args.student} "
        f"x{args.scale}, batch {args.batch}, LR patch {args.patch}, "
        f"{torch.get_num_threads()} torch thread(s)"
        + (f", {' '.join(args.overrides)}" if args.overrides else "")
    )
    print(
        f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs), torch {torch.__version__}; "
        f"load average {load_start} at start, {load_average()} at end"
    )
    print(
        f"{args.rounds} rounds, parts interleaved (order rotated each round); "
        f"{len(regressors)} deep regressor(s)"
    )

    def ratios(kind: int, name: str) -> list[float]:
        return [
            f[kind] / (t[kind] + s[kind])
            for f, t, s in zip(times[name], times[t_name], times[s_name], strict=True)
        ]

    header = f"{'round':>5} " + " ".join(f"{'CPU s':>8} {'wall s':>8}" for _ in names)
    print("\nper round (columns: " + ", ".join(names) + "), then the ratio to the sum")
    print(header + f" {'ratio CPU':>9} {'ratio wall':>10}")
    r_cpu, r_wall = ratios(0, f_name), ratios(1, f_name)
    for r in range(args.rounds):
        cells = " ".join(f"{times[n][r][0]:>8.3f} {times[n][r][1]:>8.3f}" for n in names)
        print(f"{r + 1:>5} {cells} {r_cpu[r]:>9.3f} {r_wall[r]:>10.3f}")

    print(f"\n{'part (median over rounds)':<44} {'CPU s':>8} {'wall s':>8}")
    med = {n: [statistics.median(x[k] for x in times[n]) for k in (0, 1)] for n in names}
    base = [med[t_name][k] + med[s_name][k] for k in (0, 1)]
    for n in [t_name, s_name]:
        print(f"{n:<44} {med[n][0]:>8.3f} {med[n][1]:>8.3f}")
    print(f"{'sum (the floor)':<44} {base[0]:>8.3f} {base[1]:>8.3f}")
    for n in names[2:]:
        print(f"{n:<44} {med[n][0]:>8.3f} {med[n][1]:>8.3f}")

    print(f"\n{'ratio step / (teacher + student)':<44} {'CPU':>8} {'wall':>8}")
    for n in names[2:]:
        rc, rw = statistics.median(ratios(0, n)), statistics.median(ratios(1, n))
        print(f"{n + ', median of rounds':<44} {rc:>8.3f} {rw:>8.3f}")
        print(
            f"{n + ', ratio of medians':<44} {med[n][0] / base[0]:>8.3f} {med[n][1] / base[1]:>8.3f}"
        )
    rc, rw = statistics.median(r_cpu), statistics.median(r_wall)
    verdict = "met" if 100 * (rc - 1) <= TARGET else "not met"
    print(
        f"\noverhead beyond the sum (median of {args.rounds} rounds): CPU {100 * (rc - 1):+.1f} %, "
        f"wall {100 * (rw - 1):+.1f} % (target <= +{TARGET:.0f} % on CPU time: {verdict})"
    )
    if args.rounds < 5:
        print("note: fewer than 5 rounds; use --rounds 5 or more for a reported figure")


if __name__ == "__main__":
    main()
