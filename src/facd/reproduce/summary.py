"""The report's summary and the README's "What we found": the caveats a reader needs before the
verdicts, one table of every claim with its verdict and label (this protocol's and each included
protocol's), the reversed claims and the count of each verdict.
"""

from __future__ import annotations

from pathlib import Path

from facd.errors import ConfigError
from facd.fileio import atomic_write_text
from facd.reproduce.mdcells import alpha_claims, ci_cell, ci_text, md, sets_mean
from facd.reproduce.reading import compared
from facd.reproduce.reportdoc import Report
from facd.reproduce.runstats import NEAR_DUPLICATES, trains_on
from facd.reproduce.stats import REPRODUCED, REVERSED


def summary(rep: Report) -> None:
    """The caveats a reader needs first, then one table of every claim with its verdict and
    label (this protocol's, then each included protocol's that has runs), then the reversed
    claims and the count of each verdict."""
    rep.add("## Summary", "")
    results = rep.claims.results()
    if not results and not rep.included():
        rep.add("This protocol declares no claims.", "")
        return
    rep.add(
        f"Each claim is judged on the {sets_mean(len(rep.r.sets))} (the primary measure), "
        "paired over seeds, by its 95 % t-interval against 0 and against the paper's own "
        "difference; the rule and every number are in the claims table below. State of "
        f"the runs: {rep.claims.state()}.",
        "",
    )
    report = Path(rep.p.report.path)
    notes = caveats(rep, report)
    for path, sub in rep.included():
        if sub.r.runs:
            notes += [f"- `{path}`: {line[2:]}" for line in caveats(sub, report)]
    if notes:
        rep.add("Read these first:", "", *notes, "")
    lead_table(rep, report)
    rev = reversed_lines(rep)
    lines = rev or ["- No claim is reversed here."]
    lines.append(f"- Verdicts of the {len(results)} claims: {rep.claims.verdict_counts()}.")
    for path, sub in rep.included():
        lines += reversed_lines(sub, f" (`{path}`)")
        lines.append(
            f"- `{path}` ({sub.claims.state()}): {len(sub.claims.results())} claims: "
            f"{sub.claims.verdict_counts()}."
        )
    rep.add(*lines, "")


def reversed_lines(rep: Report, prefix: str = "") -> list[str]:
    out = []
    for res in rep.claims.results():
        if res.verdict != REVERSED or res.diff is None:
            continue
        paper = (
            f"the paper: {res.paper.text()} dB ({res.paper.where()}"
            + (", a mismatch" if res.mismatch else "")
            + ")"
            if res.paper is not None
            else "the paper gives no number"
        )
        out.append(
            f"- **Reversed{prefix}:** {res.claim.text}: {compared(rep, res)} = "
            f"{ci_text(res.diff)} on the {sets_mean(len(rep.r.sets))}; {paper}."
        )
    return out


def lead_table(rep: Report, report: Path) -> None:
    """One line per claim of this protocol and of each included protocol with runs: our
    difference, the paper's, the verdict and its label."""
    from facd.reproduce.figures import relative_link

    reports: list[tuple[str, Report]] = [(rep.p.name, rep)]
    for _path, sub in rep.included():
        if sub.r.runs:
            link = relative_link(Path(sub.p.report.path), report)
            reports.append((f"[{sub.p.name}]({link})", sub))
    if not any(sub.claims.results() for _, sub in reports):
        return
    rep.add(
        "| protocol | claim | ours (dB), 95 % interval | paper (dB) | verdict | label |",
        "|---|---|---|---|---|---|",
    )
    for name, sub in reports:
        for res in sub.claims.results():
            ours = ci_cell(res.diff) if res.diff is not None else "–"
            paper = res.paper.text() if res.paper is not None else "–"
            paper += " (mismatch)" if res.mismatch else ""
            rep.add(
                f"| {name} | {md(res.claim.text)} | {ours} | {paper} | "
                f"{sub.claims.verdict_text(res, beside_label=True)} | {sub.claims.claim_label(res)} |"
            )
    rep.add("")


def caveats(rep: Report, report: Path) -> list[str]:
    """What a reader needs before the verdicts, as bullets: baselines that are
    reconstructions, rows at untuned weights, training images that are benchmark images,
    the equal-budget label, and regime conditions that fail."""
    from facd.distill.methods import get_method
    from facd.reproduce.figures import relative_link

    rows = [r for r in rep.p.rows if not r.skip and rep.r.has(r.name)]
    out = []
    if rep.r.damaged:
        named = "; ".join(f"`{f}` ({why})" for f, why in sorted(rep.r.damaged.items()))
        out.append(
            f"- **Damaged results left out:** {named}. The protocol's next run makes them again."
        )
    recon = [r for r in rows if get_method(r.method).source.startswith("reconstruction")]
    if recon:
        link = relative_link(Path("docs/methods-baselines.md"), report)
        out.append(
            f"- **Reconstructions:** {row_names(rep, recon)} "
            f"{'are' if len(recon) > 1 else 'is'} reconstructed from the papers, not checked "
            f"against their authors' code ([methods-baselines.md]({link})): a verdict "
            "against them is a verdict against the reconstruction."
        )
    untuned = [
        r
        for r in rows
        if not r.weight_source
        and r.weight is None  # a curve's fixed weight is its point, not a tuning
        and any(n not in ("l1_gt", "l1_t") for n, _ in get_method(r.method).terms)
    ]
    if untuned:
        out.append(
            f"- **Untuned weights:** {row_names(rep, untuned)} run at the method's default "
            "distillation weight, not tuned on a validation split; a method at a poor "
            "weight can lose for that reason alone."
        )
    out += contamination(rep, report)
    study = rep.p.study
    if study.kind == "equal_budget":
        iters = rep.p.budget
        out.append(
            f"- **Equal budget, not saturated:** every row trains {iters} iterations; "
            f"doubling that gains {study.doubling_gain_db:+.2f} dB ({study.doubling_source}), "
            "so a method that only speeds training up wins here without being better once "
            "trained out."
        )
    gate = rep.claims.regime_gate()
    gated = [r for r in rep.claims.results() if r.claim.needs_regime]
    if gate and gated:
        out.append(
            f"- **Regime conditions {rep.claims.regime_state()}** ({gate}): "
            f"{alpha_claims(len(gated))} "
            f"{'gets' if len(gated) == 1 else 'get'} no verdict."
        )
    return out


def contamination(rep: Report, report: Path) -> list[str]:
    """A caveat for each training image of the rows or the teacher that is a benchmark image
    in disguise (:data:`NEAR_DUPLICATES`)."""
    from facd.reproduce.figures import relative_link

    doc = relative_link(Path("docs/data.md"), report)
    out = []
    teacher = rep.p.teacher_train_config().get("data") or {}
    for image, what in NEAR_DUPLICATES.items():
        who = [
            name
            for name, data in (
                ("the runs", rep.p.shared.get("data") or {}),
                ("the teacher", teacher),
            )
            if trains_on(data, image)
        ]
        if who:
            out.append(
                f"- **A benchmark image in training:** {' and '.join(who)} train on "
                f"`{image}`, which is {what} (found by `tools/near_duplicates.py`): numbers "
                "on that set include an image seen in training. New protocols and teachers "
                "leave it out (`configs/splits/train-exclude-291.txt`; "
                f"[data.md]({doc}))."
            )
    return out


def row_names(rep: Report, rows: list) -> str:
    """``A, B and C``: the rows' labels."""
    labels = [md(rep.label(r.name)) for r in rows]
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"


#: The markers of the README section :func:`update_readme` rewrites.
README_MARKERS = ("<!-- what-we-found -->", "<!-- /what-we-found -->")


def what_we_found(rep: Report, readme: Path) -> list[str]:
    """The README's "What we found" lines, from the same claim results as the report: one line
    on how they were judged, one per protocol with runs (its label, its verdict counts, the
    claims reversed and reproduced, a link to its report), one for the protocols not run."""
    from facd.reproduce.figures import relative_link

    lines = [
        f"Generated from the claims in [{rep.p.report.path}]"
        f"({relative_link(Path(rep.p.report.path), readme)}) by `{rep.command}`: each claim is "
        "a paired difference over seeds, judged by its 95 % t-interval against 0 and against "
        "the paper's own difference.",
        "",
    ]
    idle = []
    for sub in [rep, *(s for _, s in rep.included())]:
        link = relative_link(Path(sub.p.report.path), readme)
        if not sub.r.runs:
            idle.append(f"[{sub.p.name}]({link})")
            continue
        results = sub.claims.results()
        line = (
            f"- **[{sub.p.name}]({link})** ({sub.claims.study_label()}): {len(results)} claims: "
            f"{sub.claims.verdict_counts()}."
        )
        for verdict, word in ((REVERSED, "Reversed"), (REPRODUCED, "Reproduced")):
            texts = [md(r.claim.text) for r in results if r.verdict == verdict]
            if texts:
                line += f" {word}: {'; '.join(texts)}."
        lines.append(line)
    if idle:
        lines.append(f"- Not run yet: {', '.join(idle)}.")
    return lines


def update_readme(path: Path, lines: list[str]) -> None:
    """Rewrite the part of ``path`` between :data:`README_MARKERS` with ``lines``."""
    start, end = README_MARKERS
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"report.readme: cannot read {path} ({type(err).__name__})") from None
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ConfigError(
            f"report.readme: {path} needs one '{start}' line and, after it, one '{end}' line "
            "around its 'What we found' section"
        )
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    atomic_write_text(path, head + start + "\n" + "\n".join(lines) + "\n" + end + tail)
