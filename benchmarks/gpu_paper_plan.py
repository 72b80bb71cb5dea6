"""The paper-scale plan on one GPU, in at most 10 minutes: the smoke test, a timed training step
of every method of the paper-scale protocols, and the GPU-hours those protocols would take.

1. ``benchmarks/gpu_smoke.sh`` (the paper's EDSR x4 FACD config, fp32 and bf16, Set5).
2. For ``configs/repro/paper-edsr-x4.yaml`` and ``paper-rcan-x4.yaml``: one ``Trainer.train_step``
   of each row's method on the protocol's own networks (random weights: the cost does not depend
   on them), the protocol's batch and patch, channels_last and fp32 as the protocol pins;
   ``--warm`` steps, then the mean of ``--steps`` (CUDA synchronised).
3. The students' inference time on the four benchmark sets, from a timed forward pass scaled by
   the sets' LR pixel count (read from ``--data-root``; skipped when the sets are absent).
4. The estimate, per protocol, with ``N = train.iterations`` and ``t_m`` the step time of
   method ``m``::

       main       = sum over rows r of  seeds_r * N * t_r
       sweeps     = sum over rows r of  len(weight_grid_r) * N * t_r   (one run per value)
       saturation = factor * N * t_scratch                              (the protocol's check)
       ladder     = (1 + 2 + 4) * N * t_scratch     (tools/saturation_ladder.py --factors 1 2 4)
       evaluation = (runs + 1) * t_eval                                 (the teacher once)

   Data loading is assumed hidden behind the step (8 workers); validation on the 10-image split
   is not counted (about 1 % of a run at ``val.every`` 5000).

``--dry-run`` runs the same path on the CPU with tiny networks, 2 steps and no smoke-test
training beyond the smoke script's own dry run, so that CI checks the script.

    bash benchmarks/gpu_paper_plan.sh              # on a GPU machine, < 10 minutes
    bash benchmarks/gpu_paper_plan.sh --dry-run    # CPU
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROTOCOLS = ["configs/repro/paper-edsr-x4.yaml", "configs/repro/paper-rcan-x4.yaml"]
LADDER_FACTORS = (1, 2, 4)
# --dry-run: tiny networks of each protocol's architecture
TINY = {
    "edsr": ({"preset": "edsr-tiny-s"}, {"preset": "edsr-tiny-t"}),
    "rcan": (
        {"arch": "rcan", "n_groups": 1, "n_blocks": 1, "n_feats": 8, "reduction": 4},
        {"arch": "rcan", "n_groups": 1, "n_blocks": 2, "n_feats": 8, "reduction": 4},
    ),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny networks, 2 steps")
    p.add_argument("--steps", type=int, default=20, help="timed steps per method")
    p.add_argument("--warm", type=int, default=5, help="untimed steps first")
    p.add_argument("--no-smoke", action="store_true", help="skip benchmarks/gpu_smoke.sh")
    p.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--json", default=None, help="also write the plan as JSON")
    return p.parse_args(argv)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def build_spec(net: dict, scale: int) -> Any:
    from facd.train.netconfig import NetConfig
    from facd.typedconfig import from_dict

    return from_dict(NetConfig, {k: v for k, v in net.items() if k != "weights"}).spec(scale)


def save_random(net: dict, scale: int, path: Path) -> str:
    import torch

    from facd.archs import build_model
    from facd.archs.io import save_model

    torch.manual_seed(0)
    spec = build_spec(net, scale)
    save_model(path, build_model(spec), spec)
    return str(path)


def step_seconds(cfg: dict, device: str, steps: int, warm: int, work: Path) -> float:
    """Wall seconds of one training step of ``cfg`` on ``device``, on random patches (the data
    folders are replaced by ``work``'s images)."""
    from steptime import time_train_step

    cfg = dict(cfg, val={"sets": [], "every": 0})
    cfg["train"] = dict(cfg["train"], device=device)
    cfg["data"] = dict(cfg["data"], train_dirs=[str(work)], exclude=None, num_workers=0)
    return time_train_step(cfg, steps, warm, device, work)["wall_s_per_it"]


def lr_pixels(data_root: Path, sets: list[str], scale: int) -> int | None:
    from PIL import Image

    total = 0
    for name in sets:
        folder = data_root / name / "HR"
        if not folder.is_dir():
            return None
        for f in sorted(folder.iterdir()):
            with Image.open(f) as im:
                total += (im.width // scale) * (im.height // scale)
    return total


def eval_seconds(net: dict, scale: int, device: str, pixels: int | None, side: int) -> float | None:
    import torch

    from facd.archs import build_model

    if pixels is None:
        return None
    model = build_model(build_spec(net, scale)).to(device).eval()
    x = torch.rand(1, 3, side, side, device=device)
    with torch.inference_mode():
        model(x)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(3):
            model(x)
        _sync(device)
    return (time.perf_counter() - t0) / 3 * pixels / (side * side)


def plan(proto_path: str, args: argparse.Namespace, device: str, work: Path) -> dict[str, Any]:
    from facd.reproduce.protocol import load_protocol
    from facd.reproduce.runner import Reproduction

    proto = load_protocol(REPO / proto_path)
    run = Reproduction(proto, work / "runs", jobs=1)
    arch = run.p.teacher_net().get("arch") or run.p.teacher_net()["preset"].split("-")[0]
    student, teacher_net = proto.student, proto.teacher_net()
    if args.dry_run:
        student, teacher_net = TINY[arch]
        proto.student = student
    teacher = save_random(teacher_net, proto.scale, work / f"teacher-{proto.name}.safetensors")
    n = int(proto.shared["train"]["iterations"])
    times: dict[str, float] = {}
    for row in proto.rows:
        if row.skip:
            continue
        cfg = proto.row_config(row, row.seeds[0], teacher)
        if args.dry_run:
            cfg["train"] = dict(cfg["train"], batch_size=2)
            cfg["data"] = dict(cfg["data"], patch_size=8)
            if "teacher" in cfg:
                cfg["teacher"] = {**teacher_net, "weights": teacher}
        times[row.name] = step_seconds(cfg, device, args.steps, args.warm, work / "images")
    pixels = lr_pixels(Path(args.data_root), list(proto.eval.sets), proto.scale)
    t_eval = eval_seconds(student, proto.scale, device, pixels, 64 if args.dry_run else 256)
    rows = [r for r in proto.rows if not r.skip]
    hours = {
        "main": sum(len(r.seeds) * n * times[r.name] for r in rows) / 3600,
        "sweeps": sum(len(r.weight_grid) * n * times[r.name] for r in rows) / 3600,
        "saturation": proto.saturation.factor * n * times["scratch"] / 3600,
        "ladder": sum(LADDER_FACTORS) * n * times["scratch"] / 3600,
    }
    runs = sum(len(r.seeds) for r in rows)
    hours["evaluation"] = (runs + 1) * t_eval / 3600 if t_eval is not None else float("nan")
    return {
        "protocol": proto.name,
        "iterations": n,
        "step_s": times,
        "eval_s": t_eval,
        "runs": runs,
        "gpu_hours": hours,
        "total_gpu_hours": sum(v for v in hours.values() if v == v),
    }


def synthetic_images(folder: Path, count: int = 4, size: int = 96) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(img).save(folder / f"img{i}.png")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print(
            "gpu_paper_plan: no CUDA device; use --dry-run to check the script on a CPU",
            file=sys.stderr,
        )
        return 2
    if args.dry_run:
        args.steps, args.warm = 2, 1
    device = "cpu" if args.dry_run else "cuda"
    if not args.no_smoke:
        smoke = ["bash", str(REPO / "benchmarks" / "gpu_smoke.sh")]
        smoke += ["--dry-run", "--precisions", "fp32"] if args.dry_run else []
        code = subprocess.call(smoke)
        if code != 0:
            print(f"gpu_paper_plan: the smoke test failed (exit {code})", file=sys.stderr)
            return code
    name = "CPU (dry run)" if args.dry_run else torch.cuda.get_device_name(0)
    plans = []
    with tempfile.TemporaryDirectory(prefix="facd-gpu-plan-") as tmp:
        work = Path(tmp)
        synthetic_images(work / "images")
        for proto in PROTOCOLS:
            plans.append(plan(proto, args, device, work))
    print(f"\ndevice: {name}; torch {torch.__version__}; {args.steps} timed steps per method")
    for p in plans:
        print(f"\n{p['protocol']}: {p['iterations']} iterations per run, {p['runs']} runs")
        print("| method | s/step | GPU-hours per run |\n|---|---:|---:|")
        for m, t in p["step_s"].items():
            print(f"| {m} | {t:.4f} | {t * p['iterations'] / 3600:.2f} |")
        print("| part | GPU-hours |\n|---|---:|")
        for part, h in p["gpu_hours"].items():
            print(f"| {part} | {h:.1f} |")
        print(f"| **total** | **{p['total_gpu_hours']:.1f}** |")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "plans": plans}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
