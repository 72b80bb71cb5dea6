"""Pilot of an equal-budget protocol: its learning rate, then its student budget B.

``lr``: trains the protocol's ``scratch`` row at each learning rate for its schedule times
``--factor`` (B/4 of the largest budget 6000: 1500, factor 1) on the pilot's own seed
(``PILOT_SEED``, used by no evaluation row and not the sweeps' seed), measures each on the validation split
and chooses the best (highest Y-PSNR). Every row of the study then uses that learning rate.

``budget``: trains the scratch row at the chosen learning rate for each schedule of
``--schedules`` (ascending; the protocol's schedule times 1, 2, 4 by default) and, against the
protocol's teacher, measures the two regime conditions of the protocol's ``report.regime``:

    alpha0 = fraction of ``alpha_samples`` random ``alpha_patch``-pixel LR training patches on
             which the student's output is closer to the ground truth than the teacher's
             (FACD's indicator is 0 there; :mod:`facd.reproduce.alphapatch`);
    gap    = PSNR_Y(teacher) - PSNR_Y(student) on the validation split.

B is the smallest schedule with ``alpha0 >= alpha0_min`` and ``gap <= gap_max_db``; when none
passes, B is the largest and the regime claims read "conditions not met". Every schedule given
is measured (not only up to B), so that the table also shows the gain of doubling B
(``doubling_gain_db``, when 2 B is among the schedules). ``--teacher`` measures against other
teacher weights than the protocol's (e.g. the same teacher at half its schedule). The scratch student
stands in for the distilled rows here (they need weights that the sweeps at B/2 choose); the
report's gate measures the same two statistics on the rows themselves.

``precision``: trains the scratch row at the chosen learning rate for its schedule (B) once
per autocast precision of ``--precisions`` (``train.precision``; fp32 and bf16 by default) on
the pilot's seed, and gives each one's Y-PSNR on the split and its median training speed. bf16
is an option for CPUs with native bf16 (AVX-512 BF16, AMX), never a default.

Runs go to ``runs/repro-<name>/pilot/`` (resumed when interrupted, reused when finished); the
table is printed and written to ``<results_dir>/pilot-lr.json`` / ``pilot-budget.json``.

    python tools/budget_pilot.py configs/repro/budget-rcan-x4.yaml lr --lrs 5e-4 1e-3 2e-3
    python tools/budget_pilot.py configs/repro/budget-rcan-x4.yaml budget --lr 1e-3
    python tools/budget_pilot.py configs/repro/budget-rcan-x4.yaml precision --lr 2e-3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

PILOT_SEED = 100


def _scratch_config(run: Any, lr: float, factor: float) -> dict:
    from facd.reproduce.protocol import scaled_schedule

    row = run.p.row("scratch")
    cfg = scaled_schedule(run.configs.row_config(row, PILOT_SEED), factor)
    cfg["train"]["lr"] = lr
    return cfg


def _train_and_split(run: Any, name: str, cfg: dict) -> tuple[Path, float]:
    from facd.reproduce.records import load_config_dict

    run_dir = run.out / "pilot" / name
    run.jobrunner.train(f"pilot-{name}", cfg, run_dir)
    weights = run_dir / "last.safetensors"
    out = run_dir / "split-eval.json"
    if not out.is_file() or out.stat().st_mtime < weights.stat().st_mtime:
        data = load_config_dict(cfg)["data"]
        run.jobrunner.split_eval(f"pilot-{name}", [str(weights)], list(data["train_dirs"]), out)
    return weights, float(json.loads(out.read_text())["models"][str(weights)]["psnr_y"])


def _curve(weights: Path) -> list[list[float]]:
    """The run's validation curve ``[[iteration, Y-PSNR], ...]`` (a divergence shows as a fall)."""
    from facd.reproduce.records import read_jsonl, val_curve

    return val_curve(read_jsonl(weights.parent / "metrics.jsonl"))


def choose_lr(run: Any, lrs: list[float], factor: int) -> dict:
    rows = []
    for lr in lrs:
        cfg = _scratch_config(run, lr, factor)
        _, psnr = _train_and_split(run, f"lr{lr:g}-x{factor}", cfg)
        rows.append({"lr": lr, "iterations": cfg["train"]["iterations"], "psnr_y": psnr})
    best = max(rows, key=lambda r: r["psnr_y"])
    return {"seed": PILOT_SEED, "rows": rows, "chosen_lr": best["lr"]}


def choose_budget(run: Any, lr: float, factors: list[float], teacher: str | None = None) -> dict:
    from facd.fileio import sha256_file
    from facd.reproduce.alphapatch import alpha0_on_patches
    from facd.reproduce.records import load_config_dict

    reg = run.p.report.regime
    teacher = teacher or str(run.p.teacher.weights)
    tag = f"{Path(teacher).stem}-{sha256_file(Path(teacher))[:8]}"  # these weights only
    split_t = run.out / "pilot" / f"teacher-split-{tag}.json"
    rows: list[dict] = []
    chosen = None
    for f in sorted(factors):
        cfg = _scratch_config(run, lr, f)
        weights, psnr = _train_and_split(run, f"lr{lr:g}-x{f:g}", cfg)
        data = load_config_dict(cfg)["data"]
        if not split_t.is_file():
            run.jobrunner.split_eval(
                f"pilot-teacher-{tag}", [teacher], list(data["train_dirs"]), split_t
            )
        t_psnr = float(json.loads(split_t.read_text())["models"][teacher]["psnr_y"])
        alpha = alpha0_on_patches(
            weights,
            teacher,
            list(data["train_dirs"]),
            run.p.scale,
            reg.alpha_patch,
            reg.alpha_samples,
            exclude=data.get("exclude"),
        )
        gap = t_psnr - psnr
        ok = alpha["alpha0_frac"] >= reg.alpha0_min and gap <= reg.gap_max_db
        rows.append(
            {
                "iterations": cfg["train"]["iterations"],
                "psnr_y": psnr,
                "curve": _curve(weights),
                "teacher_psnr_y": t_psnr,
                "gap_db": gap,
                "alpha0_frac": alpha["alpha0_frac"],
                "conditions_hold": ok,
            }
        )
        if ok and chosen is None:
            chosen = cfg["train"]["iterations"]
    budget = chosen if chosen is not None else rows[-1]["iterations"]
    psnr_at = {r["iterations"]: r["psnr_y"] for r in rows}
    return {
        "seed": PILOT_SEED,
        "lr": lr,
        "teacher": teacher,
        "alpha0_min": reg.alpha0_min,
        "gap_max_db": reg.gap_max_db,
        "rows": rows,
        "budget": budget,
        "conditions_hold": chosen is not None,
        "doubling_gain_db": (
            psnr_at[2 * budget] - psnr_at[budget] if 2 * budget in psnr_at else None
        ),
    }


def compare_precisions(run: Any, lr: float, precisions: list[str]) -> dict:
    from facd.reproduce.records import read_jsonl

    rows = []
    for precision in precisions:
        cfg = _scratch_config(run, lr, 1)
        cfg["train"]["precision"] = precision
        name = f"lr{lr:g}-x1" if precision == "fp32" else f"lr{lr:g}-x1-{precision}"
        weights, psnr = _train_and_split(run, name, cfg)
        speeds = sorted(
            r["it_per_s"] for r in read_jsonl(weights.parent / "metrics.jsonl") if "it_per_s" in r
        )
        rows.append(
            {
                "precision": precision,
                "iterations": cfg["train"]["iterations"],
                "psnr_y": psnr,
                "curve": _curve(weights),
                "median_it_per_s": speeds[len(speeds) // 2] if speeds else None,
            }
        )
    return {"seed": PILOT_SEED, "lr": lr, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("protocol")
    ap.add_argument("stage", choices=["lr", "budget", "precision"])
    ap.add_argument("--lrs", type=float, nargs="+", default=[5e-4, 1e-3, 2e-3])
    ap.add_argument("--lr", type=float, help="budget, precision: the learning rate chosen by 'lr'")
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], help="precision")
    ap.add_argument("--factor", type=int, default=1, help="lr: schedule factor (B/4 = 1)")
    ap.add_argument(
        "--factors",
        type=float,
        nargs="+",
        default=[1, 2, 4],
        help="budget: schedules as factors of the protocol's (0.25, 0.5 or whole numbers)",
    )
    ap.add_argument("--teacher", help="budget: teacher weights (default: the protocol's)")
    ap.add_argument("--out", type=Path, help="protocol output folder (default runs/repro-<name>)")
    args = ap.parse_args(argv)

    from facd.reproduce.protocol import load_protocol
    from facd.reproduce.runner import Reproduction

    proto = load_protocol(args.protocol)
    if any(PILOT_SEED in r.seeds for r in proto.rows) or proto.sweep_seed == PILOT_SEED:
        print(
            f"{args.protocol}: a row or the sweeps use the pilot's seed {PILOT_SEED}",
            file=sys.stderr,
        )
        return 2
    if proto.val_split is None:
        print(f"{args.protocol}: the protocol has no validation split", file=sys.stderr)
        return 2
    run = Reproduction(proto, args.out or Path("runs") / f"repro-{proto.name}", jobs=1)
    results = Path(proto.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    if args.stage == "lr":
        doc = choose_lr(run, args.lrs, args.factor)
        print("| lr | iterations | Y-PSNR on the split (dB) |\n|---:|---:|---:|")
        for r in doc["rows"]:
            print(f"| {r['lr']:g} | {r['iterations']} | {r['psnr_y']:.4f} |")
        print(f"chosen lr: {doc['chosen_lr']:g}")
    elif args.lr is None:
        print(
            f"{args.stage}: pass --lr (the learning rate chosen by the lr stage)", file=sys.stderr
        )
        return 2
    elif args.stage == "precision":
        doc = compare_precisions(run, args.lr, args.precisions)
        print("| precision | iterations | Y-PSNR on the split (dB) | it/s (median) |")
        print("|---|---:|---:|---:|")
        for r in doc["rows"]:
            print(
                f"| {r['precision']} | {r['iterations']} | {r['psnr_y']:.4f} | "
                f"{r['median_it_per_s'] or 0:.2f} |"
            )
    else:
        doc = choose_budget(run, args.lr, args.factors, args.teacher)
        print("| iterations | student (dB) | teacher (dB) | gap (dB) | alpha = 0 | holds |")
        print("|---:|---:|---:|---:|---:|---|")
        for r in doc["rows"]:
            print(
                f"| {r['iterations']} | {r['psnr_y']:.4f} | {r['teacher_psnr_y']:.4f} | "
                f"{r['gap_db']:.3f} | {100 * r['alpha0_frac']:.1f} % | {r['conditions_hold']} |"
            )
        print(f"budget B = {doc['budget']} (conditions hold: {doc['conditions_hold']})")
        if doc["doubling_gain_db"] is not None:
            print(f"gain of doubling B: {doc['doubling_gain_db']:+.3f} dB")
    from facd.fileio import atomic_write_text
    from facd.reproduce.results import pilot_path

    atomic_write_text(pilot_path(results, args.stage), json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
