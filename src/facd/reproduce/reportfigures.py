"""The report's figures, glued into its Markdown: every figure the report shows is drawn (or,
without ``draw``, linked as an earlier report drew it) from here.

The claim panels with their intervals and the paper's value, the paired curves and the measured
crops (:func:`facd.reproduce.figures.figure_section`); the lambda and budget curves of a study
(:func:`facd.reproduce.studyfigures.study_figure_lines`), where its rows form them. A new figure
of the report is one more call in :func:`figures`, drawn by a function of its own beside the
others.
"""

from __future__ import annotations

from pathlib import Path

from facd.reproduce.reportdoc import Report


def figures(rep: Report, report_path: Path, draw: bool) -> None:
    """Add the figure section to ``rep``; ``draw`` False redraws nothing and keeps the figures an
    earlier report drew."""
    from facd.reproduce.figures import figure_section
    from facd.reproduce.studyfigures import study_figure_lines

    proto = rep.p
    q = proto.qualitative
    paper = [rep.claims.paper_of(c) for c in proto.report.claims] if draw else []
    section = figure_section(
        rep.r,
        Path(proto.figures_dir),
        report_path,
        [pd.value if pd else None for pd in paper],
        qualitative=q.enabled,
        pair=(q.pair[0], q.pair[1]) if q.pair else None,
        sets=q.sets or None,
        draw=draw,
    )
    budget = proto.budget
    study = study_figure_lines(rep.r, Path(proto.figures_dir), report_path, budget, draw=draw)
    if study and not section:
        section = ["## Figures", ""]
    rep.add(*section, *study)
