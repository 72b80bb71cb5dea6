"""The report's prose about the claims: the claims table (our difference beside the paper's),
the reading (what reproduced and what did not, in words generated from the numbers) and the
observations, the protocol's sentences with their numbers filled in.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from facd.reproduce.claims import CONDITIONS_NOT_MET, ClaimResult, student_arch
from facd.reproduce.mdcells import ci_cell, md, seeds_text, sets_mean, zero_words
from facd.reproduce.paper import arch_name
from facd.reproduce.protocol import run_id
from facd.reproduce.reportdoc import Report
from facd.reproduce.reportspec import PLACEHOLDER
from facd.reproduce.runstats import distill_share, gradient_distill_share, weighted_terms
from facd.reproduce.stats import (
    CANNOT_RESOLVE,
    HOLDS,
    LARGER,
    NO_PAPER,
    NOT_REPRODUCED,
    ONE_SEED,
    PAPER_RULE,
    REPRODUCED,
    REVERSED,
    SIGN_RULE,
    SMALLER,
    Diff,
    fmt_pm,
    mean,
)

#: What each claim verdict means, after the verdict in the reading.
_MEANING = {
    REPRODUCED: "the interval excludes 0 and contains the paper's difference",
    CANNOT_RESOLVE: "the interval contains both 0 and the paper's difference",
    NOT_REPRODUCED: "the interval contains 0 but not the paper's difference",
    SMALLER: "the interval excludes 0 on the paper's side but lies below the paper's size",
    LARGER: "the interval excludes 0 on the paper's side but lies above the paper's size",
    REVERSED: "the interval excludes 0 on the side opposite to the claim",
    HOLDS: "the interval lies above 0; no paper number to compare with",
    NO_PAPER: "the interval includes 0; no paper number to compare with",
    ONE_SEED: "no interval from a single seed",
    CONDITIONS_NOT_MET: "the claim depends on the adaptive indicator, which acts only where the "
    "regime conditions hold",
}


def claims_table(rep: Report, brief: bool = False) -> None:
    """Each claim: the paper's difference (table, arch, scale, mismatch), ours with its 95 %
    interval, the verdict against 0 and against the paper. ``brief``: the rule is stated
    once, in the including report's own claims table."""
    results = rep.claims.results()
    if not results:
        return
    arch = f"{arch_name(student_arch(rep.p))} x{rep.p.scale}"
    about = (
        f"Ours: on the {sets_mean(len(rep.r.sets))}; **mismatch** where the paper's table "
        f"is not this protocol's student ({arch}). Columns and verdict rule as in the claims "
        "table above."
        if brief
        else f"Ours: the difference on the {sets_mean(len(rep.r.sets))} (the pre-declared "
        "primary measure), per seed, paired over seeds: mean and 95 % Student-t interval "
        "[low, high], n seeds. Paper: the same difference computed from the paper's own "
        "table, from the rows its authors re-ran (marked *), as the mean over the sets "
        "both rows give, with the table, architecture and scale it comes from; "
        f"**mismatch** where they differ from this protocol's student ({arch}). Verdict: "
        f"{PAPER_RULE}; {SIGN_RULE}."
    )
    rep.add(
        "## The paper's claims: our difference beside the paper's",
        "",
        about,
        "",
        "| Claim | compared | paper's difference | ours (dB) | vs 0 | verdict |",
        "|---|---|---|---|---|---|",
    )
    for res in results:
        judged = res.diff is not None and res.diff.n > 1 and not res.gate
        zero = res.diff.vs_zero() if judged and res.diff is not None else "–"
        rep.add(
            f"| {md(res.claim.text)} | {compared(rep, res)} | {paper_cell(rep, res)} | "
            f"{ours_cell(rep, res)} | {zero} | {rep.claims.verdict_text(res)} |"
        )
    rep.add("")


def compared(rep: Report, res: ClaimResult) -> str:
    a, b = res.rows
    text = f"{md(rep.label(a))} − {md(rep.label(b))}"
    return text + (" (Y-PSNR against the teacher's output)" if res.claim.metric != "psnr_y" else "")


def paper_cell(rep: Report, res: ClaimResult) -> str:
    pd, c = res.paper, res.claim
    if pd is None:
        return c.paper or "no paper number"
    text = f"{pd.text()} dB ({pd.where()}, {md(pd.rows[0])} − {md(pd.rows[1])}"
    if list(pd.sets) != rep.r.sets:
        text += f"; mean of {', '.join(pd.sets)}"
    text += ")"
    if res.mismatch:
        text += f"; **mismatch:** {res.mismatch}"
    if c.paper:
        text += f"; {c.paper}"
    return text


def ours_cell(rep: Report, res: ClaimResult) -> str:
    if res.diff is not None:
        return ci_cell(res.diff)
    if res.missing == "missing":
        missing = [rep.label(x) for x in res.rows if not rep.r.has(x)]
        return f"not run yet ({', '.join(md(m) for m in missing)})"
    return res.missing


def reading(rep: Report) -> None:
    rep.add("## Reading: what reproduced at this scale and what did not", "")
    rep.add(
        f"Generated from the numbers above. Each claim's verdict is on the "
        f"{sets_mean(len(rep.r.sets))}, by the 95 % t-interval rule stated with the claims "
        "table; a line per set, where the protocol asks for one, only says where that set's "
        "interval lies against 0.",
        "",
    )
    out = []
    for res in rep.claims.results():
        c = res.claim
        a, b = res.rows
        if res.paper is not None:
            mis = "; a mismatch" if res.mismatch else ""
            text = f"{c.text} (paper: {res.paper.text()} dB, {res.paper.where()}{mis})"
        else:
            text = f"{c.text} (paper: {c.paper})" if c.paper else c.text
        if res.diff is None:
            why = (
                f"not measured ({rep.label(a)} or {rep.label(b)} missing)"
                if res.missing == "missing"
                else res.missing
            )
            out.append(f"- {text}: {why}.")
            continue
        head = f"- {text}: {rep.label(a)} − {rep.label(b)} on"
        for set_name in rep.r.sets if c.per_set else []:
            d = rep.r.diff(a, b, set_name, c.metric)
            if d is None:
                continue
            ci = d.ci95()
            where = f", 95 % interval [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""
            out.append(
                f"{head} {set_name}: {fmt_pm(d.mean, d.std, 3, True)} dB "
                f"({seeds_text(d.n)}){where}: {zero_words(d)}."
            )
        d = res.diff
        ci = d.ci95()
        where = f", 95 % interval [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""
        verdict = res.verdict
        words = rep.claims.verdict_text(res)  # the verdict in bold, as in the claims table
        if verdict not in (ONE_SEED, CONDITIONS_NOT_MET, REVERSED):
            words = f"**{verdict}**{words[len(verdict) :]}"
        out.append(
            f"{head} {sets_mean(len(rep.r.sets))}: {fmt_pm(d.mean, d.std, 3, True)} dB "
            f"({seeds_text(d.n)}){where}: {words} ({_MEANING[verdict]})."
        )
    alpha = rep.p.report.alpha0
    fr = alpha0_fractions(rep, alpha.row) if alpha.row else []
    if fr:
        frac = mean(fr)
        if frac > alpha.paper:
            verdict = "above the paper's figure: the student beats its teacher on more patches"
        elif frac >= alpha.paper / 10:
            verdict = "the same order of magnitude"
        else:
            verdict = (
                "far below: this student stays well behind its teacher, so the indicator "
                "rarely switches the teacher off"
            )
        out.append(
            f"- alpha = 0 fraction of {rep.label(alpha.row)}: {100 * frac:.2f} % of training "
            f"patches on average ({alpha.paper_text}): {verdict}."
        )
    rep.add(*out, "")
    obs = observations(rep)
    if obs:
        rep.add("Observations (also generated from the numbers):", "", *obs, "")
    sizes = (rep.r.protocol_json or {}).get("sizes", {})
    ratio = f"{sizes['ratio']:.0f}x compression, " if sizes.get("ratio") else ""
    iters = rep.p.budget
    rep.add(
        'A claim this protocol "cannot resolve" is not refuted: its seeds cannot tell an '
        "effect of the paper's size from none, and more seeds would narrow the interval. A "
        '"one seed: no verdict" row needs more seeds before it says anything. Every verdict '
        f"here is about this set-up ({ratio}{iters} iterations per run, small networks), "
        "not about the paper's full-scale numbers.",
        "",
    )


def alpha0_fractions(rep: Report, name: str) -> list[float]:
    """The mean alpha = 0 fraction of each run of row ``name`` that logged one."""
    if not rep.r.has(name):
        return []
    runs = rep.r.row_runs(rep.p.row(name))
    return [d["alpha0"]["mean"] for d in runs.values() if d.get("alpha0")]


def observations(rep: Report) -> list[str]:
    from facd.distill.methods import pixel_terms

    out = []
    r = rep.r

    def d(a: str, b: str) -> Diff | None:
        return r.diff(a, b, None) if r.has(a) and r.has(b) else None

    best = max(
        (x for x in rep.p.rows if x.group == "main" and r.has(x.name) and x.name != rep.ref),
        key=lambda x: mean(list(r.values(x.name, None).values())),
        default=None,
    )
    if best is not None and (bd := d(best.name, rep.ref)) is not None:
        out.append(
            f"- The best student on the {sets_mean(len(r.sets))} is {rep.label(best.name)} "
            f"({fmt_pm(bd.mean, bd.std, 3, True)} dB over {rep.ref})."
        )
    for obs in rep.p.report.observations:
        text = fill(rep, obs.text, d, obs.alpha0_below)
        if text is not None:
            out.append(f"- {' '.join(text.split())}")
    for row in rep.p.rows:
        runs = r.row_runs(row)
        if row.skip or not runs or row.name == rep.ref:
            continue
        doc = runs[min(runs)]
        extra = [k for k in weighted_terms(doc) if k not in pixel_terms()]
        share = distill_share(doc)
        ref = rep.ref_at_budget(row)
        gain = d(row.name, ref) if ref is not None else None
        if not extra or share is None:
            continue
        if abs(share) < SMALL_SHARE:
            out.append(_small_term(rep, row.name, run_id(row.name, min(runs)), abs(share)))
        elif share > 0.3 and gain is not None and gain.vs_zero() in ("includes 0", ONE_SEED):
            why = "one seed: no verdict" if gain.n < 2 else "its 95 % interval includes 0"
            budget = "" if ref == rep.ref else f" at its budget ({rep.label(str(ref))})"
            out.append(
                f"- {rep.label(row.name)}: its distillation term is {100 * share:.0f} % of the "
                f"loss at the end of training, yet its gain over scratch{budget} is "
                f"{fmt_pm(gain.mean, gain.std, 3, True)} dB ({why})."
            )
    return out


#: A distillation term below this share of the loss (or of the gradient) is "small".
SMALL_SHARE = 0.01


def _small_term(rep: Report, name: str, run: str, share: float) -> str:
    """A row whose non-pixel distillation terms are a small share of its loss: whether they
    still act is their share of the student's gradient (``gradshare-<run>.json``), so the line
    says which, or that it was not measured. "Without them" is the row's method less those
    terms (for FCD: TS), not scratch."""
    label = rep.label(name)
    loss = f"{100 * share:.2f} % of the loss at the end of training"
    grad = gradient_distill_share(rep.p.results_dir, run)
    if grad is None:
        return (
            f"- {label}: its distillation terms are {loss}; whether they act is their share of "
            "the student's gradient, not measured for this row."
        )
    if grad < SMALL_SHARE:
        return (
            f"- {label}: its distillation terms are {loss} and {100 * grad:.2f} % of the "
            "student's gradient after training: they barely act, so it trains almost as it "
            "would without them."
        )
    return (
        f"- {label}: its distillation terms are only {loss}, yet {100 * grad:.1f} % of the "
        "student's gradient after training: small in the loss, they still act."
    )


def fill(
    rep: Report, text: str, d: Callable[[str, str], Diff | None], alpha0_below: float
) -> str | None:
    """``text`` with its placeholders filled in; None when a number is missing or the
    alpha = 0 condition does not hold."""

    missing = False

    def value(m: re.Match[str]) -> str:
        nonlocal missing
        kind, a, b = m.group(1), m.group(2), m.group(3)
        if kind == "label":
            return rep.label(a)
        if kind == "alpha0":
            fr = alpha0_fractions(rep, a)
            if not fr or (alpha0_below and mean(fr) >= alpha0_below):
                missing = True
                return ""
            return f"{100 * mean(fr):.2f}"
        diff = d(a, b)
        if diff is None:
            missing = True
            return ""
        if kind == "verdict":
            return {"above 0": "better", "below 0": "worse"}.get(diff.vs_zero(), diff.vs_zero())
        return fmt_pm(diff.mean, diff.std, 3, True)

    filled = PLACEHOLDER.sub(value, text)
    return None if missing else filled
