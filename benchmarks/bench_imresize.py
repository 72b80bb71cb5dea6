"""Throughput of ``bicubic_downsample`` against a plain per-output-pixel loop implementation.

Both are run in the same process; the loop version only on a small image so that it finishes.
Throughput is in input (HR) megapixels per second. The loop version's output is checked to be
identical to the vectorised one before timing is reported.

    PYTHONPATH=src python benchmarks/bench_imresize.py [--small 96] [--large 1020 2040]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from facd.data.imresize import bicubic_downsample, contributions


def _cubic(x: float) -> float:
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax <= 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


def _mirror(i: int, n: int) -> int:
    """0-based index of 1-based position ``i`` with symmetric padding."""
    i = (i - 1) % (2 * n)
    return i if i < n else 2 * n - 1 - i


def _loop_pass(src: np.ndarray, out_len: int, scale: float) -> np.ndarray:
    """Resize axis 0 of a HxWxC uint8 array, one output value at a time, rounding to uint8."""
    in_len, width, chans = src.shape
    kw = 4.0 / scale if scale < 1 else 4.0
    out = np.empty((out_len, width, chans), dtype=np.uint8)
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - kw / 2)
        taps = []
        for k in range(math.ceil(kw) + 2):
            pos = left + k
            w = scale * _cubic(scale * (u - pos)) if scale < 1 else _cubic(u - pos)
            taps.append((w, _mirror(pos, in_len)))
        total = sum(w for w, _ in taps)
        for j in range(width):
            for c in range(chans):
                acc = 0.0
                for w, i in taps:
                    acc += (w / total) * float(src[i, j, c])
                out[x - 1, j, c] = min(255, max(0, math.floor(acc + 0.5)))
    return out


def loop_downsample(hr: np.ndarray, scale: int) -> np.ndarray:
    """Straightforward MATLAB-style bicubic downsampling of uint8 HxWxC (reference)."""
    h, w = hr.shape[0] // scale * scale, hr.shape[1] // scale * scale
    img = hr[:h, :w]
    rows = _loop_pass(img, h // scale, 1 / scale)
    cols = _loop_pass(np.ascontiguousarray(rows.transpose(1, 0, 2)), w // scale, 1 / scale)
    return np.ascontiguousarray(cols.transpose(1, 0, 2))


def _time(fn, *args, min_time: float = 0.5, max_reps: int = 200) -> float:
    """Median-free simple timing: best of repeated runs until ``min_time`` has elapsed."""
    best, spent, reps = math.inf, 0.0, 0
    while (spent < min_time or reps < 1) and reps < max_reps:
        t0 = time.perf_counter()
        fn(*args)
        dt = time.perf_counter() - t0
        best, spent, reps = min(best, dt), spent + dt, reps + 1
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=96, help="side of the small square image")
    parser.add_argument("--large", type=int, nargs=2, default=[1020, 2040], metavar=("H", "W"))
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (args.small, args.small, 3), dtype=np.uint8)
    large = rng.integers(0, 256, (*args.large, 3), dtype=np.uint8)
    rows = []
    for s in args.scales:
        t0 = time.perf_counter()
        ref = loop_downsample(small, s)
        t_loop = time.perf_counter() - t0
        if not np.array_equal(ref, bicubic_downsample(small, s)):
            raise SystemExit(f"x{s}: loop and vectorised results differ")
        contributions.cache_clear()
        t_cold = _time(
            lambda img, sc: (contributions.cache_clear(), bicubic_downsample(img, sc)), small, s
        )
        t_small = _time(bicubic_downsample, small, s)
        t_large = _time(bicubic_downsample, large, s, min_time=1.0, max_reps=10)
        mp_small = small.shape[0] * small.shape[1] / 1e6
        mp_large = large.shape[0] * large.shape[1] / 1e6
        loop_rate = mp_small / t_loop
        for name, shape, t, mp in [
            ("loop (reference)", small.shape, t_loop, mp_small),
            ("vectorised, cold cache", small.shape, t_cold, mp_small),
            ("vectorised", small.shape, t_small, mp_small),
            ("vectorised", large.shape, t_large, mp_large),
        ]:
            rows.append(
                (f"x{s}", name, f"{shape[0]}x{shape[1]}x{shape[2]}", t, mp / t, mp / t / loop_rate)
            )

    print(
        f"{'scale':<6}{'implementation':<24}{'HR size':>14}{'time s':>11}"
        f"{'MPix/s':>11}{'vs loop':>10}"
    )
    for scale, name, shape, t, rate, ratio in rows:
        print(f"{scale:<6}{name:<24}{shape:>14}{t:>11.5f}{rate:>11.3f}{ratio:>9.0f}x")
    print("outputs identical: loop vs vectorised (all scales)")


if __name__ == "__main__":
    main()
