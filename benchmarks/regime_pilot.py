"""Pilot of a reproduction protocol: seconds per training iteration of its methods and of its
teacher, and the final evaluation time, to size the runs (docs/performance.md).

    OMP_NUM_THREADS=1 python benchmarks/regime_pilot.py configs/repro/regime-rcan-x4.yaml \
        --methods teacher scratch facd --steps 20 --json pilot.json

One thread, like every process of ``facd reproduce``. A training step is
``Trainer.train_step`` on a batch of the protocol's size (random pixels: the cost does not
depend on them), with untrained networks of the protocol's sizes (ditto); ``teacher`` is a step
of the teacher's own training config. Wall and CPU seconds (``time.process_time``) are both
reported: on a shared machine the wall time is the larger. The evaluation is
:func:`facd.reproduce.evaljob.evaluate_model` of an untrained student on the protocol's sets,
Urban100 cut to ``--urban`` images and scaled to 100 (stated in the output), plus the split.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from steptime import time_train_step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("protocol")
    ap.add_argument("--methods", nargs="+", default=["teacher", "scratch", "facd"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--urban", type=int, default=10, help="Urban100 images timed (x100/N)")
    ap.add_argument("--no-eval", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from facd.archs import build_model
    from facd.archs.io import save_model
    from facd.reproduce.protocol import Row, load_protocol
    from facd.train.config import NetConfig
    from facd.typedconfig import from_dict

    proto = load_protocol(args.protocol)
    tmp = Path(tempfile.mkdtemp(prefix="facd-pilot-"))
    tspec = from_dict(NetConfig, proto.teacher_net()).spec(proto.scale)
    teacher = tmp / "teacher.safetensors"
    save_model(teacher, build_model(tspec), tspec)
    out: dict = {"protocol": proto.name, "threads": 1, "methods": {}}
    for m in args.methods:
        if m == "teacher":
            cfg = proto.teacher_train_config()
        elif m.endswith("-teacher"):  # a teacher stage (PISR's)
            cfg = proto.stage_config(m)
        else:
            cfg = proto.row_config(Row(method=m, name=m), 0, str(teacher))
            if m == "pisr":
                cfg["teacher"]["weights"] = str(teacher)
        out["methods"][m] = r = time_train_step(cfg, args.steps)
        print(f"{proto.name} {m}: {r['wall_s_per_it']:.3f} s/it wall, "
              f"{r['cpu_s_per_it']:.3f} s/it CPU", flush=True)  # fmt: skip
    if not args.no_eval:
        from facd.data.benchmark import BenchmarkSet, SplitSet
        from facd.evaluate import evaluate

        sspec = from_dict(NetConfig, proto.student).spec(proto.scale)
        student = build_model(sspec).eval()
        ev: dict = {}
        for name in proto.eval.sets:
            bench = BenchmarkSet(proto.eval.data_root, name, proto.scale)
            full = len(bench)
            if name == "Urban100":
                bench.hr_paths = bench.hr_paths[: args.urban]
            w0, c0 = time.perf_counter(), time.process_time()
            evaluate(student, [bench], proto.scale, proto.eval.data_root, "cpu", progress=False)
            f = full / len(bench)
            ev[name] = {"wall_s": (time.perf_counter() - w0) * f,
                        "cpu_s": (time.process_time() - c0) * f, "scaled_from": len(bench)}  # fmt: skip
        split = proto.val_split
        if split:
            dirs = proto.shared["data"]["train_dirs"]
            w0, c0 = time.perf_counter(), time.process_time()
            bench = SplitSet(split, dirs, proto.scale)
            evaluate(student, [bench], proto.scale, bench.root, "cpu", progress=False)
            ev["split"] = {"wall_s": time.perf_counter() - w0, "cpu_s": time.process_time() - c0}
        out["eval_student"] = ev
        tot = sum(v["wall_s"] for k, v in ev.items() if k != "split")
        cpu = sum(v["cpu_s"] for k, v in ev.items() if k != "split")
        print(f"{proto.name} final evaluation of a student: {tot:.0f} s wall, {cpu:.0f} s CPU; "
              f"split: {ev.get('split', {}).get('wall_s', 0):.1f} s", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
