"""Generate the results report (Markdown) and its figures from a protocol's published JSON.

Nothing here trains or evaluates: every number comes from ``<results_dir>/*.json``. The
qualitative figure is drawn by :func:`facd.compare.build_comparison` from the published weights.

What the report says beyond the numbers is data of the protocol (its ``report:`` section,
:mod:`facd.reproduce.reportspec`): the ablation tables with their rows, reference row and
check-mark columns, the paper's claims with the rows they compare, and the observations with
their numbers as placeholders. Display names come from the method declarations
(:attr:`facd.distill.methods.MethodDef.label`) unless a row gives its own ``label``. So a new
protocol brings its own claims without a change here.

:func:`write_report` puts the sections in order; each is a function of the
:class:`~facd.reproduce.reportdoc.Report` being written:

- :mod:`facd.reproduce.summary`: the caveats before the verdicts, the table of every claim with
  its verdict and label, and the README's "What we found";
- :mod:`facd.reproduce.tables`: set-up, main comparison, ablations, Table 13 analogue, timings;
- :mod:`facd.reproduce.checktables`: regime conditions, saturation, weight sweeps, alpha = 0
  fractions, distillation share of the loss;
- :mod:`facd.reproduce.pilottables`: an equal-budget study's pilot (its learning rate and B);
- :mod:`facd.reproduce.reading`: the claims table, the reading and the observations;
- :mod:`facd.reproduce.reportfigures`: the figures.

How a claim is judged (the 95 % t-interval against 0 and against the paper's difference, the
regime conditions, the labels): :mod:`facd.reproduce.claims`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from facd.fileio import atomic_write_text
from facd.reproduce.checktables import (
    alpha_table,
    regime_table,
    saturation_table,
    sweep_tables,
    terms_table,
)
from facd.reproduce.pilottables import pilot_tables
from facd.reproduce.protocol import Protocol
from facd.reproduce.reading import claims_table, reading
from facd.reproduce.reportdoc import Report
from facd.reproduce.reportfigures import figures as figures_glue
from facd.reproduce.results import Results
from facd.reproduce.summary import contamination, summary, update_readme, what_we_found
from facd.reproduce.tables import (
    ablations,
    header,
    main_table,
    paper_reference,
    setup,
    teacher_table,
    timings,
)


def write_report(
    proto: Protocol,
    protocol_path: str,
    figures: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Write the protocol's report and figures; returns the report's path."""
    res = Results.load(proto)
    report_path = Path(proto.report.path)
    rep = Report(res, f"facd reproduce {protocol_path} --report-only", protocol_path)
    header(rep)
    if proto.report.readme:
        update_readme(Path(proto.report.readme), what_we_found(rep, Path(proto.report.readme)))
        log(f"wrote the 'What we found' section of {proto.report.readme}")
    if not res.runs and not proto.report.include:  # one line, and the checks with results
        total = len(proto.run_ids())
        rep.add(
            f"**Not run yet:** none of its {total} runs has finished; this page fills in as "
            "they do.",
            "",
        )
        if res.saturation:  # a check has run: what it trained on matters already
            rep.add(*contamination(rep, report_path), "")
            saturation_table(rep)
        if res.sweep_runs:  # the weight sweeps run first: their partial tables
            sweep_tables(rep)
        atomic_write_text(report_path, rep.text())
        log(f"wrote {report_path}")
        return report_path
    summary(rep)
    setup(rep)
    main_table(rep)
    paper_reference(rep)
    claims_table(rep)
    ablations(rep)
    teacher_table(rep)
    regime_table(rep)
    pilot_tables(rep)
    saturation_table(rep)
    sweep_tables(rep)
    alpha_table(rep)
    terms_table(rep)
    included_tables(rep, report_path)
    # Without ``figures`` nothing is redrawn: the figures an earlier report drew are kept.
    figures_glue(rep, report_path, draw=figures)
    reading(rep)
    timings(rep)
    atomic_write_text(report_path, rep.text())
    log(f"wrote {report_path}")
    return report_path


def included_tables(rep: Report, report_path: Path) -> None:
    """For each protocol the report includes, from that protocol's own results, headings one
    level down, with a link to its own report: its main table (and its verdicts), its claims
    table, its Table 13 analogue, its regime table, its pilot, its weight sweeps and its lambda
    and budget figures (as drawn by its own report). A protocol
    without results says "not run yet" in its heading's line and shows nothing more; a partial
    one says so."""
    from facd.reproduce.figures import relative_link
    from facd.reproduce.studyfigures import study_figure_lines

    for path, sub in rep.included():
        other = sub.p
        link = relative_link(Path(other.report.path), report_path)
        rep.add(
            f"## From the `{path}` protocol",
            "",
            f"Generated from that protocol's results ({sub.claims.state()}); its own report, with its "
            "set-up, readings and the evidence rules it meets or misses: "
            f"[{Path(other.report.path).name}]({link}).",
            "",
        )
        if not sub.r.runs:
            continue  # the heading's line says "not run yet"
        sub.lines = []
        main_table(sub)
        claims_table(sub, brief=bool(rep.claims.results()))
        teacher_table(sub)
        regime_table(sub)
        pilot_tables(sub)
        sweep_tables(sub)
        curves = study_figure_lines(
            sub.r, Path(other.figures_dir), report_path, other.budget, draw=False
        )
        if curves:
            sub.add("## The lambda and budget curves", "", *curves)
        rep.add(*[("#" + line) if line.startswith("#") else line for line in sub.lines])
