"""Per-method training cost: step time and peak memory of one training step, vs plain L1.

Every method trains the same student on the same batch (random tensors from a fixed seed; the
content does not change the cost) through the real ``Trainer.train_step``: teacher forward,
student forward, loss terms, backward, Adam step. Each method runs in a fresh subprocess so
that nothing (allocator caches, imported modules) leaks between methods.

Memory. On CUDA: ``torch.cuda.max_memory_allocated`` over one step, minus the memory allocated
before it (weights, batch, optimizer state). On CPU, tracemalloc does not see torch's
allocations and the profiler's memory events are incomplete, so the kernel's peak resident set
size is used: glibc's mmap threshold is pinned to 64 KiB (so every tensor larger than that is
mapped on allocation and returned on free, instead of being recycled inside the heap), free
heap memory is trimmed, the peak counter is reset (``/proc/self/clear_refs``) and one step runs;
the result is its ``VmHWM`` minus the ``VmRSS`` before it: activations, loss-term buffers,
gradients and temporaries of a steady-state step. The memory step runs after the timed steps,
so the pinned threshold does not slow the timing.

Time. On CUDA: wall time per step (synchronised). On CPU: the process's CPU time per step
(``time.process_time``) with one torch thread by default, which measures the work done and is
far less disturbed than wall time when other jobs share the cores; the fastest step is kept.

Weights are untrained (cost does not depend on them). CSD uses random VGG19 weights unless
``--vgg-weights`` is given: the cost is the same, the loss value is meaningless.

    python benchmarks/bench_methods.py                      # tiny presets, CPU, a few minutes
    python benchmarks/bench_methods.py --student edsr-s --teacher edsr-t --patch 48 \\
        --batch 16 --device cuda                            # the paper setting
"""

from __future__ import annotations

import argparse
import ctypes
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METHODS = ["scratch", "ts", "fakd", "lfd", "lsfd", "csd", "pisr-teacher", "pisr", "facd"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", default=METHODS, help="methods to measure")
    p.add_argument("--student", default="edsr-tiny-s", help="student preset")
    p.add_argument("--teacher", default="edsr-tiny-t", help="teacher preset")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--patch", type=int, default=16, help="LR patch size")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=3, help="timed steps after the first")
    p.add_argument("--repeat", type=int, default=1, help="rounds over all methods (min is kept)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch default)")
    p.add_argument("--vgg-weights", default=None, help="ImageNet VGG19 for CSD (else random)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def proc_status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"{key} not in /proc/self/status")


def cpu_step_peak_mb(step) -> float:
    """Peak resident memory of ``step()`` above the resident set before it (Linux, glibc)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD: fixed, so large blocks are unmapped on free
    libc.malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident size
    base = proc_status_mb("VmRSS")
    step()
    return max(proc_status_mb("VmHWM") - base, 0.0)


def prepare(workdir: Path, args: argparse.Namespace) -> None:
    """Untrained teacher checkpoints and a PISR encoder, shared by all workers."""
    import torch

    from facd.archs import build_model
    from facd.archs.io import save_model
    from facd.archs.spec import preset_spec
    from facd.distill.pisr import ENCODER_FILE, HREncoder, save_encoder

    torch.manual_seed(0)
    spec = preset_spec(args.teacher, args.scale)
    teacher = build_model(spec)
    save_model(workdir / "teacher.safetensors", teacher, spec)
    (workdir / "pisr").mkdir(exist_ok=True)
    save_model(workdir / "pisr" / "last.safetensors", teacher, spec, {"method": "pisr-teacher"})
    save_encoder(workdir / "pisr" / ENCODER_FILE, HREncoder(args.scale))


def config_for(method: str, workdir: Path, args: argparse.Namespace) -> dict:
    teacher = workdir / ("pisr/last.safetensors" if method == "pisr" else "teacher.safetensors")
    cfg: dict = {
        "method": method,
        "scale": args.scale,
        "student": {"preset": args.teacher if method == "pisr-teacher" else args.student},
        "data": {"train_dirs": [str(workdir)], "patch_size": args.patch},
        "val": {"sets": []},
        "train": {"batch_size": args.batch, "device": args.device},
    }
    if method not in ("scratch", "pisr-teacher"):
        cfg["teacher"] = {"preset": args.teacher, "weights": str(teacher)}
    if method == "csd":
        cfg["loss"] = {"csd": {"negatives": min(10, args.batch), "vgg_weights": args.vgg_weights}}
    return cfg


def worker(args: argparse.Namespace) -> dict:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    import facd.distill.csd as csd
    from facd.distill.vgg import VGG19Features
    from facd.train.config import load_config
    from facd.train.trainer import Trainer

    if not args.vgg_weights:
        csd.load_vgg19 = lambda _path: VGG19Features().freeze()  # cost only, not CSD results
    workdir = Path(args.workdir)
    rcfg = load_config(None, base=config_for(args.worker, workdir, args))
    trainer = Trainer(rcfg, workdir / f"run-{args.worker}", log=lambda *_: None)
    torch.manual_seed(0)
    s, p, b = args.scale, args.patch, args.batch
    lr, hr = torch.rand(b, 3, p, p), torch.rand(b, 3, p * s, p * s)
    cuda = trainer.device.type == "cuda"
    if cuda:
        lr, hr = lr.to(trainer.device), hr.to(trainer.device)
    trainer.train_step(lr, hr)  # warm-up; creates the optimizer state
    times = []
    clock = time.perf_counter if cuda else time.process_time
    for _ in range(args.steps):
        t0 = clock()
        trainer.train_step(lr, hr)
        if cuda:
            torch.cuda.synchronize()
        times.append(clock() - t0)
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        trainer.train_step(lr, hr)
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = cpu_step_peak_mb(lambda: trainer.train_step(lr, hr))
    return {
        "method": args.worker,
        "step_ms": 1000 * min(times),
        "peak_mb": peak,
        "loss_params": sum(p.numel() for p in trainer.model.terms.parameters() if p.requires_grad),
        "terms": [n for n, _ in trainer.terms_used],
        "device": str(trainer.device),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    if "scratch" not in args.methods:
        args.methods = ["scratch", *args.methods]
    best: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        prepare(Path(tmp), args)
        passthrough = sys.argv[1:] if argv is None else argv
        for _ in range(args.repeat):  # interleaved rounds: load changes hit every method
            for m in args.methods:
                cmd = [sys.executable, __file__, *passthrough, "--worker", m, "--workdir", tmp]
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode:
                    print(f"{m}: failed\n{out.stderr.strip()[-2000:]}", file=sys.stderr)
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{m}: {r['step_ms']:.1f} ms, {r['peak_mb']:.1f} MB", file=sys.stderr)
                old = best.get(m)
                if old:  # keep the fastest time and the smallest memory reading
                    r["step_ms"] = min(r["step_ms"], old["step_ms"])
                    r["peak_mb"] = min(r["peak_mb"], old["peak_mb"])
                best[m] = r
    print(format_table([best[m] for m in args.methods if m in best], args))
    return 0


def format_table(results: list[dict], args: argparse.Namespace) -> str:
    base = next(r for r in results if r["method"] == "scratch")
    clock = "wall" if base["device"].startswith("cuda") else "CPU"
    lines = [
        f"student {args.student}, teacher {args.teacher}, x{args.scale}, LR patch {args.patch}, "
        f"batch {args.batch}, device {base['device']}, {args.threads or 'default'} thread(s), "
        f"fastest of {args.steps} steps x {args.repeat} round(s)",
        "",
        f"| method | step {clock} time (ms) | time vs scratch | step peak memory (MB) "
        "| memory vs scratch | trained loss params |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        mem_ratio = r["peak_mb"] / base["peak_mb"] if base["peak_mb"] > 0 else float("nan")
        lines.append(
            f"| {r['method']} | {r['step_ms']:.1f} | {r['step_ms'] / base['step_ms']:.2f}x "
            f"| {r['peak_mb']:.1f} | {mem_ratio:.2f}x | {r['loss_params']:,} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
