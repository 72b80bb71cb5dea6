"""Inference speed and memory against this machine's measured convolution ceiling.

Sections (all by default; pick with ``--sections``):

* ``ceiling``: the best rate (GMAC/s) of one large 64->64 3x3 fp32 convolution with torch
  (NCHW, channels_last) and onnxruntime, best of several runs: the practical ceiling.
* ``paths``: edsr-s at x2 and x4 for a 1280x720 output, whole image, through torch eager
  (NCHW and channels_last), ``torch.compile`` and onnxruntime. MACs are counted with
  ``facd.complexity`` (FlopCounterMode); floor time = MACs / ceiling; reported: time, time/floor
  and % of ceiling. The ceiling conv is re-timed in the same rounds as the paths.
* ``tiling``: the ``Upscaler`` (uint8 in/out) with default tiling vs the whole image
  (``tile=0, tail_tile=0``) on the same image: time and max difference.
* ``teacher``: edsr-t vs edsr-s at x4 on a small image: time and peak RSS.
* ``upscale``: ``facd upscale``'s default path (the ``Upscaler`` with its default options, uint8
  in and out) for edsr-s x4 on a 320x180 LR image, against a 64->64 3x3 channels_last conv on a
  96x96 input timed in the same rounds (the ceiling; cache-resident, no page faults). Each
  process runs ``--rounds`` rounds; per round: CPU time of one upscale, best CPU time of three
  ceiling convs, and the ratio of their GMAC/s (MACs of the whole-image network); reported: the
  median ratio ("of the ceiling") and page faults per upscale. Two allocator setups, each in
  fresh processes, alternating: ``api`` (as the Python API leaves it) and ``cli`` (as
  ``facd upscale`` sets it up, :func:`facd.infer.allocator.reuse_freed_memory`);
  ``--upscale-modes api`` measures an older tree that has no ``cli`` setup.
* ``memory``: peak RSS of tiled upscaling to a 4000x3000 output vs smaller images, and of
  whole-image runs (``tile=0, tail_tile=0``), each in a fresh process so that the allocator's
  cache from earlier runs hides nothing.

Peak RSS is the growth of the process's resident-set high-water mark (``VmHWM``, reset through
``/proc/self/clear_refs``) over its size just before the run: network weights are already
loaded, the input is included. Linux only; elsewhere it reads "n/a".

    PYTHONPATH=src python benchmarks/bench_inference.py [--quick] [--sections paths tiling]

Default run: about 15 minutes on 2 busy shared cores; ``--quick`` (640x360 output for the
paths, one timed run, no torch.compile, no RCAN or x2 tiling, half-size memory run): about
3 minutes.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from facd.archs.io import load_model
from facd.complexity import count_macs

SECTIONS = ("ceiling", "paths", "tiling", "teacher", "upscale", "memory")


# ----------------------------------------------------------------------------- helpers


def best_time(fn: Callable[[], object], reps: int, warmup: int = 1) -> float:
    """Best wall time of ``reps`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mb(fn: Callable[[], object]) -> tuple[float | None, float]:
    """(growth of peak RSS in MiB during ``fn`` or None, seconds)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the high-water mark to the current RSS
        before = _status_kb("VmRSS")
    except OSError:
        before = None
    t0 = time.perf_counter()
    fn()
    took = time.perf_counter() - t0
    hwm = _status_kb("VmHWM")
    if before is None or hwm is None:
        return None, took
    return (hwm - before) / 1024, took


def _in_child(target: Callable, *args: object) -> dict:
    """Run ``target(*args) -> dict`` in a fresh spawned process."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(target, args)


def _fmt_mb(v: float | None) -> str:
    return "n/a" if v is None else f"{v:,.0f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def lr_shape(out_w: int, out_h: int, scale: int) -> tuple[int, int]:
    """LR (H, W) for an output of out_w x out_h."""
    return out_h // scale, out_w // scale


# ----------------------------------------------------------------------------- sections


def _ort_conv_runner(conv: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    """The same convolution run by onnxruntime."""
    import io
    import warnings

    import onnxruntime as ort

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(conv, (x,), buf, dynamo=False, opset_version=17)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    xn = x.numpy()
    return lambda: sess.run(None, {name: xn})


def _fma_peak() -> str:
    """Nominal fp32 FMA peak if the clock is known: cores x 16 MAC/cycle (2 AVX2 FMA units)."""
    try:
        with open("/proc/cpuinfo") as f:
            mhz = next(float(line.split(":")[1]) for line in f if line.startswith("cpu MHz"))
    except (OSError, StopIteration, ValueError):
        return "unknown"
    cores = torch.get_num_threads()
    return f"{cores} x 16 MAC/cycle x {mhz / 1000:.2f} GHz = {cores * 16 * mhz / 1000:.0f} GMAC/s"


def conv_runners(size: tuple[int, int]) -> tuple[int, dict[str, Callable[[], object]]]:
    """(MACs, runners) of a 64->64 3x3 fp32 conv on a (1, 64, H, W) input: torch in both
    layouts and onnxruntime."""
    h, w = size
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).eval()
    runners: dict[str, Callable[[], object]] = {}
    x = torch.rand(1, 64, h, w)
    try:
        runners["onnxruntime"] = _ort_conv_runner(conv, x)
    except Exception as err:  # noqa: BLE001
        print(f"onnxruntime conv failed: {type(err).__name__}")
    for name, fmt in (("NCHW", torch.contiguous_format), ("channels_last", torch.channels_last)):
        c = torch.nn.Conv2d(64, 64, 3, padding=1).eval()
        c.load_state_dict(conv.state_dict())
        c = c.to(memory_format=fmt)
        xf = x.contiguous(memory_format=fmt)
        runners[f"torch {name}"] = lambda c=c, xf=xf: c(xf)
    return 64 * 64 * 9 * h * w, runners


def ceiling(reps: int, size: tuple[int, int], best: dict[str, float] | None = None) -> float:
    """Print the conv rates (best of ``reps`` runs, merged with earlier ``best`` times) and
    return the ceiling: the best rate of any engine."""
    macs, runners = conv_runners(size)
    best = dict(best or {})
    with torch.inference_mode():
        for name, fn in runners.items():
            best[name] = min(best.get(name, float("inf")), best_time(fn, reps))
    rows = [
        [name, f"{macs / 1e9:.2f}", f"{t * 1e3:.0f}", f"{macs / t / 1e9:.1f}"]
        for name, t in best.items()
    ]
    h, w = size
    print(
        f"\n### Ceiling: 3x3 conv 64->64 on 1x64x{h}x{w}, fp32, {torch.get_num_threads()} threads"
    )
    print(table(["engine", "GMAC", "best ms", "GMAC/s"], rows))
    rate = macs / min(best.values()) / 1e9
    print(f"ceiling = {rate:.1f} GMAC/s (nominal FMA peak: {_fma_peak()})")
    return rate


def _onnx_session(model, spec):
    import onnxruntime as ort

    from facd.infer.export import export_onnx

    path = Path(tempfile.mkdtemp()) / "model.onnx"
    export_onnx(model, spec, path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _compiled_runner(cl: torch.nn.Module, xc: torch.Tensor, ref: torch.Tensor):
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True  # constant weights: lets inductor prepack them
    compiled = torch.compile(cl, dynamic=False)
    t0 = time.perf_counter()
    with torch.inference_mode():
        diff = (compiled(xc) - ref).abs().max().item()
    note = f"compile {time.perf_counter() - t0:.0f} s, max diff {diff:.1e}"
    return (lambda: compiled(xc)), note


def _time_paths(
    scale: int,
    out_size: tuple[int, int],
    reps: int,
    compile_: bool,
    nchw: bool = True,
    extra: dict[str, Callable[[], object]] | None = None,
    extra_best: dict[str, float] | None = None,
) -> tuple[int, list[tuple[str, float | None, str]]]:
    """(MACs, [(path, best seconds or None, note)]) of edsr-s at ``scale``, whole image.

    Each path is set up and run once (warm-up, and the max difference to eager NCHW), then
    the paths (and the ``extra`` runners: the ceiling conv) are timed in ``reps`` interleaved
    rounds, so that load from other processes on a shared machine spreads over all of them;
    the best time of each is kept (``extra_best`` collects the extra runners' times).
    """
    import copy

    torch.manual_seed(0)
    model, spec = load_model("edsr-s", scale)
    model.eval()
    h, w = lr_shape(*out_size, scale)
    macs = count_macs(model, (w, h))
    x = torch.rand(1, 3, h, w)
    runners: dict[str, tuple[Callable[[], object] | None, str]] = {}
    with torch.inference_mode():
        ref = model(x)  # also the warm-up of the NCHW path
        if nchw:
            runners["torch eager NCHW"] = ((lambda: model(x)), "")
        cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
        xc = x.contiguous(memory_format=torch.channels_last)
        diff = (cl(xc) - ref).abs().max().item()
        runners["torch eager channels_last"] = ((lambda: cl(xc)), f"max diff {diff:.1e}")
    name = "torch.compile (inductor, freezing)"
    if compile_:
        try:
            runners[name] = _compiled_runner(cl, xc, ref)
        except Exception as err:  # noqa: BLE001 - report any backend failure
            msg = str(err).strip().splitlines()[0][:80] if str(err).strip() else ""
            runners[name] = (None, f"failed: {type(err).__name__} {msg}")
    try:
        sess = _onnx_session(model, spec)
        xn = x.numpy()
        diff = float(np.abs(sess.run(None, {"lr": xn})[0] - ref.numpy()).max())
        runners["onnxruntime CPU"] = ((lambda: sess.run(None, {"lr": xn})), f"max diff {diff:.1e}")
    except Exception as err:  # noqa: BLE001
        runners["onnxruntime CPU"] = (None, f"failed: {type(err).__name__}")
    best: dict[str, float] = {}
    extra_best = {} if extra_best is None else extra_best
    with torch.inference_mode():
        for _ in range(reps):
            for key, (fn, _) in runners.items():
                if fn is not None:
                    best[key] = min(best.get(key, float("inf")), best_time(fn, 1, 0))
            for key, fn in (extra or {}).items():  # the ceiling conv, under the same load
                extra_best[key] = min(extra_best.get(key, float("inf")), best_time(fn, 1, 0))
    print(f"  x{scale} done", flush=True)
    return macs, [(key, best.get(key), note) for key, (_, note) in runners.items()]


def paths(ceil: float, out_size: tuple[int, int], timed: dict) -> None:
    """Table of edsr-s x2/x4 through each execution path against the ceiling."""
    rows = []
    for scale, (macs, results) in timed.items():
        floor = macs / (ceil * 1e9)
        for name, t, note in results:
            if t is None:
                rows.append([f"x{scale}", name, f"{macs / 1e9:.1f}", "-", "-", "-", note])
                continue
            rows.append(
                [
                    f"x{scale}",
                    name,
                    f"{macs / 1e9:.1f}",
                    f"{t:.2f}",
                    f"{t / floor:.2f}",
                    f"{100 * floor / t:.0f}%",
                    note,
                ]
            )
    ow, oh = out_size
    print(f"\n### edsr-s, whole {ow}x{oh} output, fp32; floor = MACs / ceiling ({ceil:.1f} GMAC/s)")
    print(table(["scale", "path", "GMAC", "time s", "time/floor", "% of ceiling", "note"], rows))


def _quantise(a: np.ndarray) -> np.ndarray:
    return np.round(np.clip(a, 0, 1) * 255).astype(np.int16)


def tiling(reps: int, cases: list[tuple[str, int, int | None, bool]]) -> None:
    """Tiled vs whole-image runs of the ``Upscaler`` on a 1280x720 output.

    ``cases``: (model, scale, tile or None for the default, timed). Every case reports the max
    difference to the whole image (``tile=0, tail_tile=0``); timed cases also the time of the
    full uint8 pipeline, whole and tiled runs alternating.
    """
    import facd
    from facd.infer.tiling import DEFAULT_OVERLAP, tile_grid

    rows = []
    for name, scale, tile, timed in cases:
        torch.manual_seed(0)
        up = facd.load(name, scale=scale, device="cpu", tile=tile)
        h, w = lr_shape(1280, 720, scale)
        n = len(tile_grid(h, w, up.options["tile"], DEFAULT_OVERLAP))
        lr = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
        times = ["-", "-", "-"]
        if timed:
            up(lr, tile=0, tail_tile=0), up(lr)  # warm-up
            whole = tiled = float("inf")
            for _ in range(reps):
                whole = min(
                    whole, best_time(lambda up=up, lr=lr: up(lr, tile=0, tail_tile=0), 1, 0)
                )
                tiled = min(tiled, best_time(lambda up=up, lr=lr: up(lr), 1, 0))
            times = [f"{whole:.2f}", f"{tiled:.2f}", f"{100 * (tiled / whole - 1):+.1f}%"]
        lrf = lr.astype(np.float32) / 255
        a, b = up(lrf, tile=0, tail_tile=0), up(lrf)
        qa, qb = _quantise(a), _quantise(b)
        q = int(np.abs(qa - qb).max())
        share = float(np.mean(qa != qb))
        rows.append(
            [
                f"{name} x{scale}",
                f"{w}x{h}",
                f"{up.options['tile']} ({n})",
                f"{up.description.receptive_margin}",
                *times,
                f"{np.abs(a - b).max():.1e}",
                f"{q} ({share:.3%})",
            ]
        )
        print(f"  {name} x{scale} tile {up.options['tile']} done", flush=True)
    print(
        f"\n### Tiling vs whole image, 1280x720 output, overlap {DEFAULT_OVERLAP}, tail sub-tiles "
        "of 512 output px, Upscaler fp32, untrained weights (seed 0)"
    )
    heads = ["model", "LR", "tile (tiles)", "exact from overlap", "whole s", "tiled s"]
    heads += ["overhead", "max abs diff (float)", "max diff in 0..255 (share of values)"]
    print(table(heads, rows))


def _teacher_child(name: str, size: int, reps: int) -> dict:
    torch.manual_seed(0)
    model, _ = load_model(name, 4)
    model = model.eval().to(memory_format=torch.channels_last)
    x = torch.rand(1, 3, size, size).contiguous(memory_format=torch.channels_last)
    macs = count_macs(model, (size, size))
    params = sum(p.numel() for p in model.parameters())
    with torch.inference_mode():
        peak, first = peak_rss_mb(lambda: model(x))
        t = best_time(lambda: model(x), reps, 0)
    return {"name": name, "params": params, "macs": macs, "time": min(t, first), "peak": peak}


def teacher(size: int, reps: int) -> None:
    rows = []
    res = {n: _in_child(_teacher_child, n, size, reps) for n in ("edsr-s", "edsr-t")}
    for n, r in res.items():
        rows.append(
            [
                n,
                f"{r['params'] / 1e6:.2f} M",
                f"{r['macs'] / 1e9:.1f}",
                f"{r['time']:.2f}",
                _fmt_mb(r["peak"]),
            ]
        )
    s, t = res["edsr-s"], res["edsr-t"]
    ratio_mem = f"{t['peak'] / s['peak']:.1f}x" if s["peak"] and t["peak"] is not None else "n/a"
    rows.append(
        [
            "teacher/student",
            f"{t['params'] / s['params']:.1f}x",
            f"{t['macs'] / s['macs']:.1f}x",
            f"{t['time'] / s['time']:.1f}x",
            ratio_mem,
        ]
    )
    print(
        f"\n### Teacher vs student, x4, {size}x{size} LR -> {4 * size}x{4 * size}, whole image, "
        "fp32 channels_last"
    )
    print(table(["model", "params", "GMAC", "time s", "peak RSS MiB"], rows))


def _memory_child(name: str, lr_hw: tuple[int, int], tile: int) -> dict:
    import facd

    torch.manual_seed(0)
    up = facd.load(name, scale=4, device="cpu", tile=tile, tail_tile=None if tile else 0)
    h, w = lr_hw
    lr = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    up(lr[:16, :16])  # warm up oneDNN before measuring
    holder: dict = {}
    peak, took = peak_rss_mb(lambda: holder.setdefault("out", up(lr)))
    out_mb = holder["out"].nbytes / 2**20
    return {"peak": peak, "time": took, "out_mb": out_mb}


def memory(name: str, big: tuple[int, int]) -> None:
    from facd.archs import preset_spec
    from facd.infer.tiling import DEFAULT_OVERLAP, default_tile

    bh, bw = big
    tile = default_tile(preset_spec(name, 4))
    cases = [
        ((bh // 4, bw // 4), 0),
        ((bh // 4, bw // 4), tile),
        ((bh // 2, bw // 2), 0),
        ((bh // 2, bw // 2), tile),
        ((bh, bw), tile),
    ]
    rows = []
    for (h, w), tile in cases:
        r = _in_child(_memory_child, name, (h, w), tile)
        rows.append(
            [
                f"{w}x{h}",
                f"{4 * w}x{4 * h}",
                "whole" if tile == 0 else f"{tile} (+{DEFAULT_OVERLAP})",
                _fmt_mb(r["peak"]),
                f"{r['out_mb']:.0f}",
                f"{r['time']:.1f}",
            ]
        )
        print(f"  {w}x{h} tile {tile} done", flush=True)
    print(f"\n### Peak memory, {name} x4, uint8 output, fp32 CPU")
    print(table(["LR", "output", "tile", "peak RSS MiB", "output array MiB", "time s"], rows))


def _upscale_child(mode: str, rounds: int) -> dict:
    import resource
    import statistics
    import warnings

    import facd

    if mode == "cli":
        from facd.infer.allocator import reuse_freed_memory

        assert reuse_freed_memory(), "glibc's mallopt is not available here"
    warnings.simplefilter("ignore")  # untrained preset
    torch.manual_seed(0)
    up = facd.load("edsr-s", scale=4, device="cpu")
    lr = np.random.default_rng(0).integers(0, 256, (180, 320, 3), dtype=np.uint8)
    macs = count_macs(up.model, (180, 320))
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).eval().to(memory_format=torch.channels_last)
    x = torch.rand(1, 64, 96, 96).contiguous(memory_format=torch.channels_last)
    conv_macs = 64 * 64 * 9 * 96 * 96

    def cpu(fn: Callable[[], object]) -> float:
        t0 = time.process_time()
        fn()
        return time.process_time() - t0

    up(lr)  # warm-up
    times, ceilings, faults = [], [], []
    with torch.inference_mode():
        conv(x)
        for _ in range(rounds):
            ceilings.append(conv_macs / min(cpu(lambda: conv(x)) for _ in range(3)) / 1e9)
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            times.append(cpu(lambda: up(lr)))
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    ratios = [macs / t / 1e9 / c for t, c in zip(times, ceilings, strict=True)]
    return {
        "times": times,
        "ceilings": ceilings,
        "ratios": ratios,
        "faults": statistics.median(faults),
        "macs": macs,
    }


def upscale(rounds: int, modes: list[str]) -> None:
    import statistics

    res: dict[str, list[dict]] = {m: [] for m in modes}
    for _ in range(2):
        for m in modes:
            res[m].append(_in_child(_upscale_child, m, rounds))
    rows = []
    for m, runs in res.items():
        times = [t for r in runs for t in r["times"]]
        ceil = [c for r in runs for c in r["ceilings"]]
        ratios = [q for r in runs for q in r["ratios"]]
        rows.append(
            [
                m,
                f"{statistics.median(times):.3f}",
                f"{statistics.median(ceil):.1f}",
                f"{100 * statistics.median(ratios):.1f} %",
                f"{100 * min(ratios):.1f}-{100 * max(ratios):.1f} %",
                f"{statistics.median([r['faults'] for r in runs]):,.0f}",
            ]
        )
    macs = next(iter(res.values()))[0]["macs"]
    print(
        f"\n### facd upscale default path, edsr-s x4, 320x180 -> 1280x720, uint8, "
        f"{macs / 1e9:.1f} GMAC, {torch.get_num_threads()} thread(s), 2 processes x {rounds} "
        "rounds per setup"
    )
    heads = ["allocator", "CPU s (median)", "ceiling GMAC/s (median)", "of the ceiling (median)"]
    print(table(heads + ["range", "page faults per upscale"], rows))


def _load() -> str:
    try:
        return ", ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="640x360 output, one run, no compile")
    ap.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    ap.add_argument(
        "--reps", type=int, default=None, help="timed runs per case after a warm-up (default 2)"
    )
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--teacher-size", type=int, default=64, help="LR side for teacher vs student")
    ap.add_argument("--memory-model", default="edsr-s", help="model for the 4000x3000 memory run")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per process of 'upscale'")
    ap.add_argument("--upscale-modes", nargs="+", choices=("api", "cli"), default=["api", "cli"])
    args = ap.parse_args()
    reps = args.reps or (1 if args.quick else 2)
    out_size = (640, 360) if args.quick else (1280, 720)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    conv_size = (180, 320) if args.quick else (360, 640)
    print(f"load average at start: {_load()}")
    if "ceiling" in args.sections and "paths" not in args.sections:
        ceiling(3 if args.quick else 5, conv_size)
    if "paths" in args.sections:
        compile_ = not (args.quick or args.no_compile)
        _, convs = conv_runners(conv_size)
        with torch.inference_mode():
            conv_best = {k: best_time(fn, 2) for k, fn in convs.items()}
        results = {
            s: _time_paths(s, out_size, reps, compile_, s == 4, convs, conv_best) for s in (4, 2)
        }
        ceil = ceiling(1, conv_size, conv_best)
        paths(ceil, out_size, results)
    if "tiling" in args.sections:
        cases = [("edsr-s", 4, None, True), ("edsr-s", 4, 160, False)]
        if not args.quick:
            cases += [("edsr-s", 2, None, True), ("rcan-s", 4, 160, False)]
        tiling(reps, cases)
    if "teacher" in args.sections:
        teacher(args.teacher_size // (2 if args.quick else 1), reps)
    if "upscale" in args.sections:
        upscale(2 if args.quick else args.rounds, args.upscale_modes)
    if "memory" in args.sections:
        big = (375, 500) if args.quick else (750, 1000)
        memory(args.memory_model, big)
    print(f"\nload average at end: {_load()} (1, 5, 15 min; {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
