"""Weights hashes of a short `facd train` run for every registered method.

For refactors that must not change results: run it before and after, and compare. Each method
trains 4 steps of ``configs/tiny/facd.yaml`` switched to it, on synthetic images, once with the
shipped trained tiny teacher and once with a random one (PISR: a random stage-1 teacher and encoder; CSD: a random VGG19, since ImageNet
weights cannot be had offline). The hash covers every tensor of the final training state's
model (student and loss modules), in key order, bit for bit.

    python tools/method_hashes.py --json hashes.json
    python tools/method_hashes.py --compare before.json after.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Two teachers, so that both regimes of the adaptive indicator are covered: the trained one is
# better than the student everywhere (alpha = 1), the random one worse (alpha = 0).
TRAINED_TEACHER = REPO / "src" / "facd" / "assets" / "teacher-edsr-tiny-t-x4.safetensors"


def state_hash(run_dir: Path) -> str:
    from facd.train.state import latest_state_path, load_state

    path = latest_state_path(run_dir)
    assert path is not None, run_dir
    model = load_state(path)["model"]
    h = hashlib.sha256()
    for key in sorted(model):
        h.update(key.encode())
        h.update(model[key].detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", help="write {method: hash} here")
    p.add_argument("--methods", nargs="*", help="default: every registered method")
    p.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    args = p.parse_args(argv)
    if args.compare:
        a, b = (json.loads(Path(x).read_text()) for x in args.compare)
        same = True
        for m in sorted(set(a) | set(b)):
            flag = "equal" if a.get(m) == b.get(m) else "DIFFERENT"
            same &= flag == "equal" or m not in a or m not in b
            print(f"{m:18s} {a.get(m, '-'):18s} {b.get(m, '-'):18s} {flag}")
        return 0 if same else 1

    import torch

    from facd.distill import csd as csd_mod
    from facd.distill.methods import METHODS
    from facd.distill.vgg import VGG19Features
    from facd.train.config import load_config
    from facd.train.loop import run_training
    from tests.test_resume_all_methods import build_assets, overrides

    torch.set_num_threads(1)
    csd_mod.load_vgg19 = lambda _path: VGG19Features().freeze()  # random VGG19, see above
    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        assets = build_assets(root)  # its 'teacher' is the random one
        for method in args.methods or sorted(METHODS):
            parts = []
            for name, teacher in (("trained", TRAINED_TEACHER), ("random", assets["teacher"])):
                run = root / f"{method}-{name}"
                over = overrides(method, {**assets, "teacher": teacher})
                run_training(
                    load_config(REPO / "configs/tiny/facd.yaml", over), run, progress=False
                )
                parts.append(state_hash(run))
            out[method] = "-".join(parts)
            print(f"{method:18s} {out[method]}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
