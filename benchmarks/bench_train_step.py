"""CPU cost of one training step per method of the regime protocols, against the machine's
convolution ceiling, for today's eager path and the fast path (docs/performance.md).

For each protocol pair (``configs/repro/regime-rcan-x4.yaml``, ``regime-edsr-x2.yaml``) and
each method (scratch, ts, fakd, lsfd, fcd, facd), a ``Trainer`` is built from the protocol's row
config (untrained networks of the protocol's sizes: the cost does not depend on the weights)
once per variant, and its real ``Trainer.train_step`` is timed on the protocol's own training
patches (``TrainPatches``, in the process: ``data.num_workers`` 0, so the process's CPU time is
the whole cost). The step is cut into parts by timers around the pieces ``train_step`` calls:

- data: ``TrainPatches[t]`` (patch sampling, augmentation, uint8 -> float) and the batch's
  move to the step's memory format;
- teacher: ``Distiller.teacher_forward`` (frozen teacher, no grad, taps);
- student: the student's forward (module hooks);
- loss: the loss terms and FACD's indicator (the rest of ``Distiller.forward``; with
  ``compile``, the student's forward too);
- backward: from the end of the forward to the optimizer (``backward`` of student and terms);
- optimizer: Adam's step and the scheduler.

Clock: ``time.process_time`` (CPU seconds of the process, one torch thread), which is far less
disturbed than wall time when other jobs share the cores. Work: ``3 x`` the student's forward
MACs (forward + backward) plus the teacher's forward MACs, per batch (``facd.complexity``);
GMAC/s = work / CPU s. The ceiling is a 64->64 3x3 fp32 convolution in channels_last with one
thread on a (1, 64, 96, 96) input, timed in every round. Variants (``eager``: the switches off,
NCHW, the default of ``facd train`` before channels_last; ``fast``: ``train.channels_last``, the
default now; ``compile``: the fast path plus ``train.compile``, with ``--compile``; ``bf16``: the
fast path under bf16 autocast, ``train.precision: bf16``, with ``--bf16``) run interleaved: every round runs each method's
every variant for ``--steps`` steps; the table shows the median over ``--rounds`` rounds of
each round's mean. The first step of each (untimed warm-up) is reported apart: CPU seconds of
the process and wall seconds (torch.compile also compiles in worker processes).

    PYTHONPATH=src python benchmarks/bench_train_step.py      # 5 min of CPU, 30 min on a busy machine
    PYTHONPATH=src python benchmarks/bench_train_step.py --quick         # a check: seconds
    PYTHONPATH=src python benchmarks/bench_train_step.py --pairs rcan --methods facd --compile
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
PAIRS = {
    "rcan": "configs/repro/regime-rcan-x4.yaml",
    "edsr": "configs/repro/regime-edsr-x2.yaml",
}
METHODS = ["scratch", "ts", "fakd", "lsfd", "fcd", "facd"]
PARTS = ["data", "teacher", "student", "loss", "backward", "optimizer"]
CEILING_SIZE = (96, 96)
VARIANTS: dict[str, dict[str, Any]] = {
    "eager": {"channels_last": False, "compile": False},  # NCHW, the published protocols' path
    "fast": {"channels_last": True, "compile": False},  # the defaults of facd train
    "compile": {"channels_last": True, "compile": True},
    "bf16": {"channels_last": True, "compile": False, "precision": "bf16"},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    p.add_argument("--methods", nargs="+", default=METHODS)
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    p.add_argument("--steps", type=int, default=2, help="timed steps per variant and round")
    p.add_argument(
        "--compile",
        action="store_true",
        help="add the torch.compile variant (one method and one pair per run: compiled "
        "students of one class in one process lost their taps in a run with two methods)",
    )
    p.add_argument(
        "--bf16",
        action="store_true",
        help="add the bf16 autocast variant (train.precision: bf16) on the fast path",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a check that the script works, not a timing: batch 2, LR patch 12, T91 only, "
        "2 rounds of 1 step",
    )
    p.add_argument("--json", type=Path, help="write every measurement here")
    args = p.parse_args(argv)
    if args.compile and (len(args.methods) > 1 or len(args.pairs) > 1):
        p.error("--compile measures one method of one pair per run (--pairs X --methods M)")
    return args


# ----------------------------------------------------------------------------- ceiling


def conv_ceiling() -> Callable[[], float]:
    """A function timing one 64->64 3x3 channels_last conv: returns its GMAC/s."""
    h, w = CEILING_SIZE
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).eval().to(memory_format=torch.channels_last)
    x = torch.rand(1, 64, h, w).contiguous(memory_format=torch.channels_last)
    macs = 64 * 64 * 9 * h * w

    def rate() -> float:
        with torch.inference_mode():
            conv(x)
            best = float("inf")
            for _ in range(5):
                t0 = time.process_time()
                conv(x)
                best = min(best, time.process_time() - t0)
        return macs / best / 1e9

    return rate


# ----------------------------------------------------------------------------- one method


class StepClock:
    """Timers around the pieces of one ``Trainer.train_step`` (see the module docstring).

    ``student_hooks=False`` (a compiled student, whose module hooks would be traced into its
    graph): the student's forward is counted in the loss terms' part.
    """

    def __init__(self, trainer: Any, student_hooks: bool = True) -> None:
        self.marks: dict[str, float] = {}
        model = trainer.model
        teacher_forward = model.teacher_forward

        def timed_teacher(lr: torch.Tensor, hr: torch.Tensor) -> Any:
            self._mark("teacher_in")
            out = teacher_forward(lr, hr)
            self._mark("teacher_out")
            return out

        model.teacher_forward = timed_teacher
        if student_hooks:
            model.student.register_forward_pre_hook(lambda *_: self._mark("student_in"))
            model.student.register_forward_hook(lambda *_: self._mark("student_out"))
        model.register_forward_hook(lambda *_: self._mark("forward_out"))
        trainer.optimizer.register_step_pre_hook(lambda *_: self._mark("optimizer_in"))

    def _mark(self, name: str) -> None:
        self.marks[name] = time.process_time()

    def parts(self, start: float, end: float) -> dict[str, float]:
        m = self.marks
        student = m["student_out"] - m["student_in"] if "student_in" in m else 0.0
        return {
            "input": m["teacher_in"] - start,  # the batch's memory format, device
            "teacher": m["teacher_out"] - m["teacher_in"],
            "student": student,
            "loss": m["forward_out"] - m["teacher_out"] - student,
            "backward": m["optimizer_in"] - m["forward_out"],
            "optimizer": end - m["optimizer_in"],
        }


class Case:
    """One method of one pair under one variant: its trainer, clock and work per step."""

    def __init__(self, rcfg: Any, run_dir: Path, dataset: Any) -> None:
        from facd.archs import build_model
        from facd.complexity import count_macs
        from facd.train.trainer import Trainer

        self.trainer = Trainer(rcfg, run_dir, log=lambda *_: None)
        self.clock = StepClock(self.trainer, student_hooks=not rcfg.config.train.compile)
        self.dataset = dataset
        cfg = rcfg.config
        p, b = cfg.data.patch_size, cfg.train.batch_size
        # counted on fresh networks of the same specs: the trainer's carry taps (and may be
        # compiled), which a counting pass must not run through
        macs = 3 * count_macs(build_model(self.trainer.student_spec), (p, p))
        if self.trainer.teacher_spec is not None and self.trainer.teacher is not None:
            macs += count_macs(build_model(self.trainer.teacher_spec), (p, p))
        self.gmac = macs * b / 1e9

    def step(self, iteration: int) -> dict[str, float]:
        t0 = time.process_time()
        lr, hr = self.dataset[iteration]
        t1 = time.process_time()
        self.clock.marks.clear()
        self.trainer.train_step(lr, hr)
        t2 = time.process_time()
        parts = self.clock.parts(t1, t2)
        parts["data"] = t1 - t0 + parts.pop("input")
        parts["total"] = t2 - t0
        return parts


def variant_config(base: dict, variant: str) -> dict:
    cfg = json.loads(json.dumps(base))
    train = cfg.setdefault("train", {})
    for key in ("channels_last", "compile", "precision"):  # the protocols pin what they ran with
        train.pop(key, None)
    train.update(VARIANTS[variant])
    return cfg


def build_cases(
    pair: str, args: argparse.Namespace, variants: list[str], tmp: Path
) -> tuple[dict[tuple[str, str], Case], dict]:
    from facd.archs import build_model
    from facd.archs.io import save_model
    from facd.data.patches import TrainPatches
    from facd.reproduce.protocol import Row, load_protocol
    from facd.train.config import NetConfig, load_config
    from facd.typedconfig import from_dict

    proto = load_protocol(REPO / PAIRS[pair])
    tspec = from_dict(NetConfig, proto.teacher_net()).spec(proto.scale)
    torch.manual_seed(0)
    teacher = tmp / f"{pair}-teacher.safetensors"
    save_model(teacher, build_model(tspec), tspec)
    quick = {"data": {"patch_size": 12}, "train": {"batch_size": 2}} if args.quick else {}
    cases: dict[tuple[str, str], Case] = {}
    dataset = None
    for method in args.methods:
        row_cfg = proto.row_config(Row(method=method, name=method), 0, str(teacher))
        for part, values in quick.items():
            row_cfg.setdefault(part, {}).update(values)
        if args.quick:
            row_cfg["data"]["train_dirs"] = row_cfg["data"]["train_dirs"][:1]
        for variant in variants:
            rcfg = load_config(None, [], base=variant_config(row_cfg, variant))
            c = rcfg.config
            if dataset is None:
                dataset = TrainPatches(
                    list(c.data.train_dirs),
                    c.scale,
                    c.data.patch_size,
                    c.train.batch_size,
                    c.train.iterations,
                    seed=c.seed,
                    augment=c.data.augment,
                    small_images=c.data.small_images,
                    exclude=c.data.exclude,
                    progress=False,
                )
            cases[method, variant] = Case(rcfg, tmp / f"{pair}-{method}-{variant}", dataset)
    c = rcfg.config
    info = {
        "protocol": PAIRS[pair],
        "student": proto.student,
        "teacher": proto.teacher_net(),
        "scale": c.scale,
        "batch": c.train.batch_size,
        "patch": c.data.patch_size,
    }
    return cases, info


# ----------------------------------------------------------------------------- report


def summarise(samples: list[dict[str, float]]) -> dict[str, float]:
    """The median over rounds of each part (each sample: one round's mean)."""
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}


def table(pair: str, info: dict, rows: dict, gmacs: dict, ceiling: float) -> str:
    head = (
        f"{pair}: {info['protocol']}, student {info['student']}, teacher {info['teacher']}, "
        f"x{info['scale']}, batch {info['batch']}, LR patch {info['patch']}"
    )
    lines = [
        head,
        "",
        "| method | variant | " + " | ".join(PARTS) + " | total CPU s/it | GMAC/s | "
        "of ceiling | speed-up |",
        "|---|---|" + "---:|" * (len(PARTS) + 4),
    ]
    for (method, variant), r in rows.items():
        base = rows.get((method, "eager"), r)
        rate = gmacs[method, variant] / r["total"]
        lines.append(
            f"| {method} | {variant} | "
            + " | ".join(f"{r[p]:.3f}" for p in PARTS)
            + f" | {r['total']:.3f} | {rate:.1f} | {rate / ceiling:.0%} "
            f"| {base['total'] / r['total']:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.rounds, args.steps = 2, 1
    variants = ["eager", "fast", *(["compile"] if args.compile else [])]
    variants += ["bf16"] if args.bf16 else []
    ceiling = conv_ceiling()
    out: dict[str, Any] = {"load_before": os.getloadavg(), "pairs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for pair in args.pairs:
            cases, info = build_cases(pair, args, variants, Path(tmp))
            first: dict[tuple[str, str], dict[str, float]] = {}
            for key, case in cases.items():  # warm-up (compilation, allocator, optimizer state)
                w0 = time.perf_counter()
                first[key] = {"cpu_s": case.step(0)["total"], "wall_s": time.perf_counter() - w0}
            samples: dict[tuple[str, str], list[dict[str, float]]] = {k: [] for k in cases}
            ceilings: list[float] = []
            for rnd in range(args.rounds):
                ceilings.append(ceiling())
                for key, case in cases.items():
                    steps = [case.step(1 + rnd * args.steps + i) for i in range(args.steps)]
                    samples[key].append(
                        {k: statistics.fmean(s[k] for s in steps) for k in steps[0]}
                    )
            ceil = statistics.median(ceilings)
            rows = {k: summarise(v) for k, v in samples.items()}
            gmacs = {k: c.gmac for k, c in cases.items()}
            print(table(pair, info, rows, gmacs, ceil))
            print("\nfirst step (warm-up; compilation runs in worker processes too):")
            for (method, variant), f in first.items():
                print(f"  {method} {variant}: {f['cpu_s']:.2f} CPU s, {f['wall_s']:.1f} s wall")
            print(
                f"\nceiling (64->64 3x3 conv, channels_last, 1 thread, {CEILING_SIZE}): "
                f"{ceil:.1f} GMAC/s, median of {args.rounds} rounds; median of {args.rounds} "
                f"rounds x {args.steps} steps; load average {os.getloadavg()[0]:.2f}\n",
                flush=True,
            )
            out["pairs"][pair] = {
                "info": info,
                "ceiling_gmacs": ceil,
                "rows": [
                    {
                        "method": m,
                        "variant": v,
                        "gmac_per_step": gmacs[m, v],
                        "first_step": first[m, v],
                        **rows[m, v],
                    }
                    for m, v in rows
                ],
            }
    out["load_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
