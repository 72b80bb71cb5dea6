"""How long must a protocol's networks train? A ladder of schedules, measured on the split.

Trains the first seed of a protocol row (or the protocol's teacher, ``--row teacher``) with its
schedule multiplied by each factor (iterations and learning-rate milestones scaled together, as
the protocol's saturation check does), evaluates each on the protocol's validation split and
prints the Y-PSNR of each rung and the gain of each doubling. The saturation rule of the
protocols: a network counts as trained at N iterations when training for 2N gains less than
``saturation.threshold_db`` (0.02 dB) on the split. Runs go to ``runs/repro-<name>/ladder/``,
one folder per rung, are resumed when interrupted and reused when finished, so a ladder can be
extended later (``--factors 8 16``) without retraining its lower rungs.

    python tools/saturation_ladder.py configs/repro/regime-edsr-x2.yaml --row scratch \\
        --factors 1 2 4 8 --json ladder.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("protocol")
    ap.add_argument("--row", default="scratch", help="row name, or 'teacher'")
    ap.add_argument("--factors", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--out", type=Path, help="protocol output folder (default runs/repro-<name>)")
    ap.add_argument("--json", type=Path, help="also write the table as JSON")
    args = ap.parse_args(argv)

    from facd.reproduce.protocol import load_protocol, scaled_schedule
    from facd.reproduce.records import load_config_dict
    from facd.reproduce.runner import Reproduction

    proto = load_protocol(args.protocol)
    if proto.val_split is None:
        print(f"{args.protocol}: the protocol has no validation split", file=sys.stderr)
        return 2
    run = Reproduction(proto, args.out or Path("runs") / f"repro-{proto.name}", jobs=1)
    if args.row == "teacher":
        base = proto.teacher_train_config()
    else:
        row = proto.row(args.row)
        base = run.configs.row_config(row, row.seeds[0])
    threshold = proto.saturation.threshold_db
    rungs = []
    for f in sorted(set(args.factors)):
        cfg = scaled_schedule(base, f)
        name = f"{args.row}-s0-x{f}" if args.row != "teacher" else f"teacher-x{f}"
        run_dir = run.out / "ladder" / name
        run.jobrunner.train(f"ladder-{name}", cfg, run_dir)
        data = load_config_dict(cfg)["data"]
        out = run_dir / "split-eval.json"
        weights = run_dir / "last.safetensors"
        if not out.is_file() or out.stat().st_mtime < weights.stat().st_mtime:
            run.jobrunner.split_eval(
                f"ladder-{name}", [str(weights)], list(data["train_dirs"]), out
            )
        psnr = json.loads(out.read_text())["models"][str(weights)]["psnr_y"]
        rungs.append({"factor": f, "iterations": cfg["train"]["iterations"], "psnr_y": psnr})

    print(f"{proto.name}, {args.row}: Y-PSNR on the split {proto.val_split}")
    print("| iterations | Y-PSNR (dB) | gain over the previous rung (dB) | saturated by the rule |")
    print("|---:|---:|---:|---|")
    for prev, cur in zip([None, *rungs[:-1]], rungs, strict=True):
        if prev is None:
            print(f"| {cur['iterations']} | {cur['psnr_y']:.4f} | | |")
            continue
        gain = cur["psnr_y"] - prev["psnr_y"]
        cur["gain_db"] = gain
        doubled = cur["factor"] == 2 * prev["factor"]
        verdict = (
            f"{prev['iterations']}: {'yes' if gain < threshold else 'no'}" if doubled else "n/a"
        )
        print(f"| {cur['iterations']} | {cur['psnr_y']:.4f} | {gain:+.4f} | {verdict} |")
    if args.json:
        args.json.write_text(json.dumps({"protocol": proto.name, "row": args.row, "rungs": rungs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
