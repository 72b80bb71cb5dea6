"""The report's tables of an equal-budget study's pilot (``tools/budget_pilot.py``): how its
learning rate and its budget B were chosen, from the pilot's published JSON.

- ``pilot-lr.json``: the scratch student at each learning rate for one schedule, scored on the
  validation split; the best is the pilot's choice. The rows' learning rate
  (``shared.train.lr``) is shown beside it, with ``study.lr_note`` where the two differ.
- ``pilot-budget.json``: the scratch student at each schedule against the study's teacher: its
  split Y-PSNR, the teacher's, the gap and the alpha = 0 fraction after training, and whether
  both regime conditions hold there (``alpha0 >= alpha0_min`` and ``gap <= gap_max_db``).
  B is the smallest schedule at which they hold; ``doubling_gain_db`` is B -> 2B.
- ``study.other_pilots``: budget pilots against teachers the study does not use, as records.
"""

from __future__ import annotations

from facd.reproduce.reportdoc import Report


def _lr(value: float) -> str:
    return f"{value:g}"


def pilot_tables(rep: Report) -> None:
    """The pilot's section; nothing when the protocol has no pilot results."""
    pilots = rep.r.pilots
    if "lr" not in pilots and "budget" not in pilots:
        return
    split = rep.p.val_split or "the validation split"
    seed = (pilots.get("lr") or pilots.get("budget") or {}).get("seed")
    rep.add(
        "## Pilot: the learning rate and the budget B",
        "",
        f"The scratch student on the pilot's own seed ({seed}; no other run uses it), scored "
        f"on the validation split (`{split}`) by `python tools/budget_pilot.py "
        f"{rep.protocol_path} lr|budget` (`pilot-lr.json`, `pilot-budget.json` in "
        f"`{rep.p.results_dir}`).",
        "",
    )
    if "lr" in pilots:
        _lr_table(rep, pilots["lr"])
    if "budget" in pilots:
        _budget_table(rep, pilots["budget"], "the study's teacher")
    for path, doc in rep.r.other_pilots.items():
        if doc is None:
            rep.add(f"`{path}` (a budget pilot the protocol lists): missing or unreadable.", "")
        else:
            _budget_table(rep, doc, "another teacher (a record; not used)", path)


def _lr_table(rep: Report, doc: dict) -> None:
    rows = doc.get("rows") or []
    if not rows:
        return
    lr = rep.p.train_settings.get("lr")
    used = None if lr is None else float(lr)
    best = max(rows, key=lambda r: r["psnr_y"])
    iters = sorted({r["iterations"] for r in rows})
    rep.add(
        f"### Learning rate ({', '.join(str(i) for i in iters)} iterations)",
        "",
        "| lr | validation-split Y-PSNR (dB) | |",
        "|---:|---:|---|",
    )
    for r in sorted(rows, key=lambda r: r["lr"]):
        marks = []
        if r is best:
            marks.append("best of the grid")
        if r["lr"] == used:
            marks.append("**every row**")
        rep.add(f"| {_lr(r['lr'])} | {r['psnr_y']:.3f} | {', '.join(marks)} |")
    rep.add("")
    if used is None:
        return
    if best["lr"] == used:
        rep.add(f"Every row runs at the pilot's best, lr {_lr(best['lr'])}.", "")
    elif rep.p.study.lr_note:
        rep.add(
            f"Every row runs at lr {_lr(used)}, not the pilot's best "
            f"{_lr(best['lr'])}: {rep.p.study.lr_note}",
            "",
        )
    else:
        rep.add(
            f"Every row runs at lr {_lr(used)}, not the pilot's best {_lr(best['lr'])}, "
            "and the protocol gives no reason (`study.lr_note`).",
            "",
        )


def _budget_table(rep: Report, doc: dict, teacher: str, path: str = "") -> None:
    rows = doc.get("rows") or []
    if not rows:
        return
    reg = rep.p.report.regime
    patches = f"{reg.alpha_samples} {reg.alpha_patch}-px LR patches"
    # A record names its teacher, or the folder it is kept in says which (older pilots).
    weights = doc.get("teacher") or ("" if path else rep.p.teacher.weights)
    named = f"`{weights}`" if weights else "not named in the file (the README beside it names it)"
    rep.add(
        f"### Budget B against {teacher}",
        "",
        (f"`{path}`. " if path else "") + f"Teacher: {named}; student lr "
        f"{_lr(doc['lr'])}. Conditions: alpha = 0 on ≥ {100 * doc['alpha0_min']:g} % of "
        f"{patches}, gap ≤ {doc['gap_max_db']:g} dB on the split.",
        "",
        "| student iterations | student (dB) | teacher (dB) | gap (dB) | alpha = 0 | conditions |",
        "|---:|---:|---:|---:|---:|---|",
    )
    for r in rows:
        holds = "hold" if r["conditions_hold"] else "fail"
        rep.add(
            f"| {r['iterations']} | {r['psnr_y']:.3f} | {r['teacher_psnr_y']:.3f} | "
            f"{r['gap_db']:.3f} | {100 * r['alpha0_frac']:.1f} % | {holds} |"
        )
    rep.add("")
    budget = doc.get("budget")
    if path:  # a record: what it decided is said by the study's own table
        return
    used = rep.p.budget
    lines = [
        f"B = {budget}: the smallest schedule at which both conditions hold."
        if doc.get("conditions_hold")
        else f"The conditions hold at no schedule: B = {budget}, the largest, and the claims "
        "that need the regime read *conditions not met*."
    ]
    if used is not None and used != budget:
        lines.append(f"The rows run {used} iterations, not the pilot's B.")
    gain = doc.get("doubling_gain_db")
    if gain is not None:
        lines.append(
            f"Doubling B gains {gain:+.3f} dB on the split: the students are not saturated, "
            "so every verdict is one of an equal budget."
        )
    rep.add(" ".join(lines), "")
