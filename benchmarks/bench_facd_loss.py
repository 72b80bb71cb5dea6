"""Peak memory and time of FACD's contrastive loss (Eq. 4), ours vs a naive N x N x D version.

Each variant runs forward + backward in a fresh subprocess; peak memory is the growth of the
process's maximum resident set size (ru_maxrss) over its size after the inputs were built.

    python benchmarks/bench_facd_loss.py                 # N=16, 256 x 48 x 48 (paper EDSR teacher)
    python benchmarks/bench_facd_loss.py --n 16 --c 64   # RCAN width
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def worker(variant: str, n: int, c: int, hw: int) -> dict:
    import torch

    from facd.distill.contrastive import l1_ratio, l1_ratio_naive

    torch.manual_seed(0)
    a = torch.randn(n, c * hw * hw, requires_grad=True)
    t = torch.randn(n, c * hw * hw)
    fn = l1_ratio if variant == "ours" else l1_ratio_naive
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    loss = fn(a, t, student_negatives=True).sum()
    loss.backward()
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "variant": variant,
        "seconds": elapsed,
        "extra_mb": (peak - base) / 1024,
        "input_mb": a.numel() * 4 / 2**20,
        "loss": float(loss),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--c", type=int, default=256)
    p.add_argument("--hw", type=int, default=48)
    p.add_argument("--worker", choices=["ours", "naive"])
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.c, args.hw)))
        return
    rows = {}
    for variant in ("ours", "naive"):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                variant,
                "--n",
                str(args.n),
                "--c",
                str(args.c),
                "--hw",
                str(args.hw),
            ],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            rows[variant] = {"variant": variant, "error": out.stderr.strip().splitlines()[-1]}
            continue
        rows[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    ours, naive = rows["ours"], rows["naive"]
    d = args.c * args.hw * args.hw
    print(
        f"FACD contrastive loss, one tap: N={args.n}, D={args.c}x{args.hw}x{args.hw}={d:,} "
        f"(one feature batch = {ours.get('input_mb', 0):.0f} MB)"
    )
    print(f"{'variant':<8} {'time (s)':>9} {'extra peak (MB)':>16} {'loss':>12}")
    for r in (ours, naive):
        if "error" in r:
            print(f"{r['variant']:<8} failed: {r['error']}")
        else:
            print(
                f"{r['variant']:<8} {r['seconds']:>9.3f} {r['extra_mb']:>16.0f} {r['loss']:>12.6f}"
            )
    if "error" not in ours and "error" not in naive:
        print(
            f"ratio naive/ours: time {naive['seconds'] / ours['seconds']:.2f}x, "
            f"extra memory {naive['extra_mb'] / max(ours['extra_mb'], 1):.1f}x; "
            f"same loss: {abs(naive['loss'] - ours['loss']) <= 1e-4 * abs(naive['loss'])}"
        )


if __name__ == "__main__":
    main()
