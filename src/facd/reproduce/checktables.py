"""The report's tables of the evidence checks: the regime conditions, the saturation check,
the weight sweeps, the alpha = 0 fractions and the share of the loss that is distillation.
"""

from __future__ import annotations

from facd.reproduce.claims import gap_place, student_arch
from facd.reproduce.mdcells import alpha_claims, md, sets_mean
from facd.reproduce.paper import paper_diff
from facd.reproduce.protocol import (
    SATURATION_RULE,
    SPLIT,
    SWEEP_RULE,
    Row,
    format_weight,
    run_id,
    sweep_run_id,
    weight_key,
)
from facd.reproduce.reportdoc import Report
from facd.reproduce.runstats import (
    DIP_DB,
    adaptive,
    distill_share,
    gradient_distill_share,
    largest_dip,
    weighted_terms,
)
from facd.reproduce.stats import mean


def regime_table(rep: Report) -> None:
    """The regime conditions (``report.regime``): each measured value beside the paper's and
    the requirement, with a verdict."""
    reg = rep.p.report.regime
    if not (reg.gap_row or reg.alpha0_row):
        return
    rep.add(
        "## Regime: are the paper's mechanisms active?",
        "",
        "The adaptive scheme only acts where the teacher is sometimes worse than the student: "
        "a small student-teacher gap and a visible alpha = 0 fraction. A claim that depends "
        "on the adaptive indicator (`needs_regime`) gets a verdict only where every required "
        "condition holds; elsewhere it reads *conditions not met: no verdict*.",
        "",
        "| condition | measured | paper | required | verdict |",
        "|---|---|---|---|---|",
    )
    if reg.gap_row:
        for where in (reg.gap_on, None):
            if where and where != SPLIT and where not in rep.r.sets:
                continue
            st = rep.r.stat(reg.gap_row, where)
            gap = rep.claims.gap(where)
            name = gap_place(where) if where else sets_mean(len(rep.r.sets))
            what = f"teacher − {rep.label(reg.gap_row)} gap, {name}"
            paper = reg.gap_paper_text if where else paper_gap(rep)
            if st is None or gap is None:
                rep.add(f"| {md(what)} | not measured yet | {paper} | | |")
                continue
            need = f"≤ {reg.gap_max_db:g} dB" if reg.gap_max_db and where else ""
            verdict = ("holds" if gap <= reg.gap_max_db else "**does not hold**") if need else ""
            rep.add(f"| {md(what)} | {gap:.2f} dB (n={st[2]}) | {paper} | {need} | {verdict} |")
    if reg.alpha0_row:
        label = md(rep.label(reg.alpha0_row))
        runs = rep.r.row_runs(rep.p.row(reg.alpha0_row)) if rep.r.has(reg.alpha0_row) else {}
        lq = [d["alpha0"]["last_quarter_mean"] for d in runs.values() if d.get("alpha0")]
        need = f"≥ {100 * reg.alpha0_min:g} %" if reg.alpha0_min else ""
        need_lq = "" if reg.alpha_patch else need  # the gate's measure: after training
        if lq:
            v = mean(lq)
            verdict = ("holds" if v >= reg.alpha0_min else "**does not hold**") if need_lq else ""
            cell = f"{100 * v:.2f} % (n={len(lq)})"
        else:
            verdict, cell = "", "not measured yet"
        rep.add(
            f"| alpha = 0 fraction of {label}, last quarter of training (training patches) | "
            f"{cell} | {reg.alpha0_paper_text} | {need_lq} | {verdict} |"
        )
        if reg.alpha_patch:
            fr = [d["alpha0_frac"] for d in rep.r.alpha_patch.values()]
            cell = (
                f"{100 * mean(fr):.2f} % (n={len(fr)}, {rep.r.alpha_patch_samples()} patches)"
                if fr
                else "not measured yet"
            )
            verdict = (
                ("holds" if mean(fr) >= reg.alpha0_min else "**does not hold**")
                if need and fr
                else ""
            )
            rep.add(
                f"| alpha = 0 fraction of {label} after training, {reg.alpha_patch}-pixel LR "
                f"patches of the training images | {cell} | {reg.alpha0_paper_text} | {need} "
                f"| {verdict} |"
            )
    rep.add("")
    gated = [r for r in rep.claims.results() if r.claim.needs_regime]
    if gated:
        gate = rep.claims.regime_gate()
        rep.add(
            (
                f"The conditions do not all hold ({gate}): {alpha_claims(len(gated))} "
                f"{'gets' if len(gated) == 1 else 'get'} no verdict."
                if gate
                else f"The conditions hold: {alpha_claims(len(gated))} "
                f"{'is' if len(gated) == 1 else 'are'} judged."
            ),
            "",
        )


def paper_gap(rep: Report) -> str:
    """The paper's teacher - student gap on the mean of the sets this protocol evaluates
    (Table 2, at the student's architecture, else EDSR, and scale), mismatch labelled."""
    from facd.reproduce.paper import PaperRefError

    arch = student_arch(rep.p)
    try:
        pd = paper_diff(
            "2",
            arch if arch in ("edsr", "rcan") else "edsr",
            rep.p.scale,
            "Teacher",
            "Student",
            rep.r.sets,
        )
    except PaperRefError:
        return ""
    mis = rep.claims.mismatch(pd)
    return f"{pd.value:.2f} dB ({pd.where()}, mean of {', '.join(pd.sets)})" + (
        f"; **mismatch:** {mis}" if mis else ""
    )


def saturation_table(rep: Report) -> None:
    """The saturation check (``saturation:`` in the protocol): each network's validation
    split Y-PSNR with its schedule and with the schedule ``factor`` times as long."""
    sat = rep.p.saturation
    if not sat.enabled:
        return
    rep.add(
        "## Saturation: are the networks trained?",
        "",
        f"Rule: {SATURATION_RULE} (here: a schedule {sat.factor}x as long, iterations and "
        f"learning-rate milestones scaled, gains less than {sat.threshold_db:g} dB). Measured "
        "on the validation split only, never on the benchmark sets.",
        "",
        "| Network | iterations | split Y-PSNR | with the longer schedule | gain (dB) | "
        f"rule: gain < {sat.threshold_db:g} dB |",
        "|---|---|---|---|---|---|",
    )
    names = (["teacher"] if sat.teacher else []) + [
        run_id(n, rep.p.row(n).seeds[0]) for n in sat.rows
    ]
    for name in names:
        doc = rep.r.saturation.get(name)
        label = (
            rep.p.teacher.label
            if name == "teacher"
            else f"{rep.label(name.rsplit('-s', 1)[0])} ({name})"
        )
        if doc is None:
            rep.add(f"| {md(label)} | – | not run yet | | | |")
            continue
        a, b = doc["psnr_y"]
        n, m = doc["iterations"]
        verdict = "**trained**" if doc["saturated"] else "**not trained**: extend its schedule"
        rep.add(
            f"| {md(label)} | {n} → {m} | {a:.3f} | {b:.3f} | {doc['gain_db']:+.3f} | {verdict} |"
        )
    rep.add("")


def sweep_tables(rep: Report) -> None:
    """The weight sweeps (rows with ``weight_grid``): per row, every weight tried with its
    validation-split Y-PSNR and the chosen one, and the rows that inherit the choice."""
    swept = [r for r in rep.p.rows if r.weight_grid and not r.skip]
    if not swept:
        return
    cap = rep.p.sweep.max_extensions
    rep.add(
        "## Weight sweeps on the validation split",
        "",
        f"Rule: {SWEEP_RULE} (here: at most {cap} extension{'s' if cap != 1 else ''} per "
        "row). Each row, and every row that inherits its weight, then runs all its seeds at "
        "the chosen weight; no sweep run is an evaluation run. "
        "Weights are in each method's paper units.",
        "",
    )
    for row in swept:
        doc = rep.r.sweeps.get(row.name)
        heirs = [r.name for r in rep.p.rows if r.weight_from == row.name and not r.skip]
        rep.add(
            f"### {md(rep.label(row.name))} (`{weight_key(row)}`, seed {rep.p.sweep_seed})",
            "",
            "| weight | validation-split Y-PSNR (dB) | training | chosen |",
            "|---|---|---|---|",
        )
        unstable = False
        if doc is not None:
            for run in doc["runs"]:
                ext = " (extension)" if run.get("extension") else ""
                mark = "**chosen**" if run["weight"] == doc["chosen"] else ""
                cell, bad = _stability(rep, row, run["weight"])
                unstable |= bad
                rep.add(
                    f"| {format_weight(run['weight'])}{ext} | {run['psnr_y']:.3f} | {cell} "
                    f"| {mark} |"
                )
        else:
            for w in sorted(row.weight_grid):
                run = rep.r.sweep_runs.get(sweep_run_id(row.name, w, rep.p.sweep_seed))
                cell = f"{run['psnr_y']:.3f}" if run else "not run yet"
                stable, bad = _stability(rep, row, w) if run else ("", False)
                unstable |= bad
                rep.add(f"| {format_weight(w)} | {cell} | {stable} | |")
        rep.add("")
        notes = []
        if unstable:
            notes.append(
                f"A run marked diverged fell more than {DIP_DB:g} dB below its best validation "
                "Y-PSNR on the way (a loss spike), whether or not it recovered: its score is what "
                "that weight gives at this learning rate, and the rule counts it as it is."
            )
        if doc is None:
            notes.append("No weight chosen yet (partial).")
        else:
            n = len(doc.get("extensions") or [])
            notes.append(
                f"Chosen: {format_weight(doc['chosen'])}, on the validation split "
                f"`{doc.get('split')}` ({doc.get('images')} images); grid extended {n} "
                f"time{'s' if n != 1 else ''}."
            )
            if doc.get("edge_unresolved"):
                notes.append(
                    "The best weight is still at an end of the grid after "
                    f"{n} extension{'s' if n != 1 else ''} (the cap): a better weight may lie "
                    "beyond it."
                )
            elif doc.get("at_edge"):
                notes.append(
                    "The best weight is at an end of the grid, which cannot be extended "
                    "that way (weights are >= 0)."
                )
        if heirs:
            notes.append(
                "Runs at this weight too (they only flip a switch): "
                + ", ".join(md(rep.label(h)) for h in heirs)
                + "."
            )
        rep.add(" ".join(notes), "")


def _stability(rep: Report, row: Row, weight: float) -> tuple[str, bool]:
    """The "training" cell of a sweep run: ``stable``, or ``diverged`` with the largest fall
    of its validation curve below its best so far (:func:`largest_dip`), and whether it
    diverged."""
    run = rep.r.sweep_runs.get(sweep_run_id(row.name, weight, rep.p.sweep_seed)) or {}
    found = largest_dip(run.get("curve") or [])
    if found is None:
        return "", False
    dip, at = found
    if dip <= DIP_DB:
        return "stable", False
    return f"diverged (−{dip:.1f} dB at it. {at:g})", True


def alpha_table(rep: Report) -> None:
    rows = []
    for r in rep.p.rows:
        runs = rep.r.row_runs(r)
        fr = [d["alpha0"] for d in runs.values() if d.get("alpha0")]
        if fr:
            rows.append((r, fr))
    if not rows:
        return
    rep.add(
        "## Fraction of training patches with alpha = 0",
        "",
        "alpha_i = 0 when the student is already closer to the ground truth than the teacher "
        "on patch i (Eq. 1). It is logged for every method that runs the teacher, but changes "
        "the loss only for the adaptive rows (FACD and its variants). Per-epoch fractions from "
        "`metrics.jsonl`; mean over seeds.",
        "",
        "| Method | seeds | mean over training | last quarter of training | range of epochs |",
        "|---|---|---|---|---|",
    )
    for r, fr in rows:
        m = mean([f["mean"] for f in fr])
        lq = mean([f["last_quarter_mean"] for f in fr])
        lo, hi = min(f["min"] for f in fr), max(f["max"] for f in fr)
        mark = " (adaptive)" if adaptive(r.method) else ""
        rep.add(
            f"| {rep.label(r.name)}{mark} | {len(fr)} | {100 * m:.1f} % | {100 * lq:.1f} % | "
            f"{100 * lo:.1f}–{100 * hi:.1f} % |"
        )
    rep.add("")


def terms_table(rep: Report) -> None:
    rows = []
    for r in rep.p.rows:
        shares = [s for d in rep.r.row_runs(r).values() if (s := distill_share(d)) is not None]
        if shares:
            rows.append((r, shares))
    if not rows:
        return
    rep.add(
        "## How much of the loss is distillation",
        "",
        "Weighted loss terms averaged over the last quarter of training (from `metrics.jsonl`), "
        "seed 0: the share of the total that is not a pixel L1 term (to the ground truth or "
        "to the teacher's output). A method whose share is tiny barely differs from training "
        "from scratch by construction.",
        "",
        "The gradient share beside it is the share of the student's gradient that the same "
        "terms give (the norm of each weighted term's gradient over the sum of the norms), "
        "measured after training from the run's last state on one fixed batch "
        "(`gradshare-<run>.json`; `tools/gradient_share.py` measures any run folder): a "
        "term with a visible loss share may still barely move the student.",
        "",
        "| Method | weighted terms at the end of training | distillation share of the loss "
        "| of the gradient |",
        "|---|---|---|---|",
    )
    for r, shares in rows:
        doc = rep.r.row_runs(r)[min(rep.r.row_runs(r))]
        terms = ", ".join(f"{k} {v:.2g}" for k, v in weighted_terms(doc).items())
        share = mean(shares)
        text = "≈ 0 %" if abs(share) < 0.0005 else f"{100 * share:.1f} %"
        grad = gradient_distill_share(rep.p.results_dir, doc.get("run_id", ""))
        grad_text = "not measured" if grad is None else f"{100 * grad:.1f} %"
        rep.add(f"| {rep.label(r.name)} | {terms} | {text} | {grad_text} |")
    rep.add("")
