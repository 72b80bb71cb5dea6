"""The ``report:`` and ``qualitative:`` sections of a reproduction protocol
(:class:`facd.reproduce.protocol.Protocol`): what the generated report says beyond the numbers.

:class:`ReportSection` holds the reference row of the main table, the ablation tables
(:class:`ReportTable`), the paper's claims with the rows they compare (:class:`ReportClaim`, its
number in the paper as a :class:`PaperRef`), the regime conditions (:class:`RegimeSection`) and
the observations, sentences whose numbers are placeholders (:data:`PLACEHOLDER`). Each section
checks itself (``validate``); the rows and methods it names are checked against the protocol's
rows by :meth:`facd.reproduce.protocol.Protocol.validate`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from facd.errors import ConfigError
from facd.typedconfig import field


@dataclass
class QualitativeSection:
    """The report's qualitative figure: crops where two rows' outputs differ most, measured
    (:func:`facd.reproduce.plotdata.choose_crops`), not chosen by hand."""

    enabled: bool = field(True, "draw the figure (it runs both networks on the searched sets)")
    pair: list[str] = field(
        [], "[a, b]: the rows whose outputs are compared (empty: the first PSNR claim's rows)"
    )
    sets: list[str] = field([], "sets searched for crops (empty: Set5 and Set14)")

    def validate(self, where: str) -> None:
        if self.pair and len(self.pair) != 2:
            raise ConfigError(f"'{where}.pair' must name two rows [a, b], got {self.pair}")


#: ``{diff A B}``, ``{verdict A B}``, ``{alpha0 A}``, ``{label A}`` in an observation's text.
PLACEHOLDER = re.compile(r"\{(diff|verdict|alpha0|label) ([\w.+-]+)(?: ([\w.+-]+))?\}")
_PLACEHOLDER_ARITY = {"diff": 2, "verdict": 2, "alpha0": 1, "label": 1}
METRICS = ("psnr_y", "teacher_psnr")


@dataclass
class ReportTable:
    """An ablation table: its rows' PSNR per set and their difference from a reference row."""

    title: str = field("", "heading of the table")
    about: str = field("", "what the table tests (the paragraph under the heading)")
    rows: list[str] = field([], "rows shown, in order (row names, or method names not run)")
    reference: str = field("", "the row the others are compared with (one of 'rows')")
    columns: list[str] = field([], "check-mark columns, e.g. the loss components of Table 8")
    marks: dict[str, list[str]] = field({}, "row -> the columns it checks")

    def validate(self, where: str) -> None:
        if not self.title or len(self.rows) < 2:
            raise ConfigError(f"'{where}' needs a 'title' and at least two 'rows'")
        if self.reference not in self.rows:
            raise ConfigError(
                f"'{where}.reference' {self.reference!r} must be one of its rows {self.rows}"
            )
        for row, checked in self.marks.items():
            if row not in self.rows:
                raise ConfigError(f"'{where}.marks' names {row!r}, which is not in its rows")
            bad = [c for c in checked if c not in self.columns]
            if bad:
                raise ConfigError(
                    f"'{where}.marks.{row}' checks {bad}, not among its columns {self.columns}"
                )


@dataclass
class PaperRef:
    """Where a claim's number is in the paper: two rows of one of its tables at one architecture
    and scale (:mod:`facd.reproduce.paper`). The paper's difference is ``rows[0] - rows[1]``,
    the mean over the sets both rows give."""

    table: str | int = field("", "the paper's table, e.g. 2, 8 or 13")
    arch: str = field("", "the paper's architecture there: edsr or rcan")
    scale: int = field(0, "the paper's scale there: 2, 3 or 4", ge=0)
    rows: list[str] = field([], "[a, b]: the paper's rows as it prints them, e.g. [FACD, 'FAKD*']")

    def validate(self, where: str) -> None:
        from facd.reproduce.paper import PaperRefError, check_ref

        self.table = str(self.table)
        try:
            check_ref(self.table, self.arch, self.scale, self.rows)
        except PaperRefError as err:
            raise ConfigError(f"'{where}.{err.key}': {err}") from None


@dataclass
class ReportClaim:
    """A claim of the paper, ``a - b > 0`` on the mean of the evaluation sets, judged beside the
    paper's own difference (``paper_ref``) or a free ``paper`` text where the paper has no
    such rows."""

    text: str = field("", "the claim, in the paper's terms")
    rows: list[str] = field([], "[a, b]: the claim holds when a beats b")
    paper: str = field(
        "",
        "free text where the paper gives no such rows (e.g. 'no such row in the paper'), or a "
        "note shown after the paper's difference",
    )
    paper_ref: PaperRef | None = field(
        None, "the paper's rows: {table, arch, scale, rows: [a, b]} (see facd.reproduce.paper)"
    )
    per_set: bool = field(False, "one line per evaluation set before the mean of the sets")
    metric: str = field("psnr_y", "psnr_y, or teacher_psnr (Y-PSNR against the teacher's output)")
    optional: bool = field(
        False, "left out, rather than 'not measured', while a row has no results"
    )
    needs_regime: bool = field(
        False,
        "the claim depends on the adaptive indicator alpha (FACD > FCD, Eq. 6 > Eq. 7): it gets "
        "a verdict only where the conditions of 'report.regime' hold, else 'conditions not met: "
        "no verdict'; required for a claim whose rows differ in alpha alone",
    )

    def validate(self, where: str) -> None:
        if not self.text or len(self.rows) != 2:
            raise ConfigError(f"'{where}' needs a 'text' and 'rows: [a, b]'")
        if self.metric not in METRICS:
            raise ConfigError(
                f"'{where}.metric' must be one of {', '.join(METRICS)}, got {self.metric!r}"
            )
        if self.paper_ref is not None:
            from facd.reproduce.paper import TABLES

            metric = TABLES[str(self.paper_ref.table)].metric
            if metric != self.metric:
                raise ConfigError(
                    f"'{where}.paper_ref.table': Table {self.paper_ref.table} gives {metric}, "
                    f"the claim's metric is {self.metric}; set 'metric: {metric}' or use "
                    "another table"
                )


@dataclass
class Alpha0Claim:
    """The paper's figure for the fraction of training patches with alpha = 0 (Eq. 1)."""

    row: str = field("", "the row whose logged alpha = 0 fraction is compared (empty: none)")
    paper: float = field(0.05, "the paper's fraction", ge=0, le=1)
    paper_text: str = field("paper, EDSR: up to 5 %", "how the report quotes the paper")


@dataclass
class RegimeSection:
    """The conditions under which the paper's mechanisms are active, measured and reported beside
    the paper's values: the student-teacher gap, and FACD's alpha = 0 fraction (logged in the
    last quarter of training, and measured afterwards on ``alpha_patch``-pixel patches)."""

    gap_row: str = field("", "row whose gap to the teacher is reported, e.g. scratch (empty: none)")
    gap_paper_db: float = field(0.0, "the paper's teacher - student gap on Set5 (dB)", ge=0)
    gap_paper_text: str = field("", "how the report quotes the paper's gap")
    gap_max_db: float = field(0.0, "largest gap of the regime (0: no requirement)", ge=0)
    gap_on: str = field(
        "Set5",
        "where the gap condition is measured: a set of 'eval.sets', or 'split' (the validation "
        "split: each run's last validation Y-PSNR, and the teacher's on the same split, as "
        "tools/budget_pilot.py measures it)",
    )
    alpha0_row: str = field("", "row whose alpha = 0 fraction is checked, e.g. facd")
    alpha0_min: float = field(
        0.0, "smallest alpha = 0 fraction in the last quarter of training (0: none)", ge=0, le=1
    )
    alpha0_paper_text: str = field("", "how the report quotes the paper's alpha = 0 fraction")
    alpha_patch: int = field(
        48, "LR patch size of the measurement after training (0: not measured)", ge=0, le=1024
    )
    alpha_samples: int = field(512, "patches of that measurement", ge=1, le=1_000_000)


@dataclass
class ReportObservation:
    """A sentence of the report with numbers filled in: ``{diff A B}`` (A - B, mean of the sets,
    3 digits), ``{verdict A B}`` (its verdict), ``{alpha0 A}`` (A's alpha = 0 fraction, in %),
    ``{label A}``. It is left out while a number it names is missing."""

    text: str = field("", "the sentence, with placeholders")
    alpha0_below: float = field(
        0.0, "shown only when the alpha = 0 fraction it names is below this (0: always)", ge=0
    )

    def validate(self, where: str) -> None:
        if not self.text:
            raise ConfigError(f"'{where}.text' is required")
        for m in PLACEHOLDER.finditer(self.text):
            names = [n for n in m.groups()[1:] if n]
            if len(names) != _PLACEHOLDER_ARITY[m.group(1)]:
                raise ConfigError(f"'{where}.text': {m.group(0)} names the wrong number of rows")
        if self.alpha0_below and "{alpha0 " not in self.text:
            raise ConfigError(f"'{where}.alpha0_below' needs an {{alpha0 ROW}} in the text")

    def names(self) -> list[str]:
        return [n for m in PLACEHOLDER.finditer(self.text) for n in m.groups()[1:] if n]


@dataclass
class ReportSection:
    """What the generated report says beyond the numbers: its tables, and the paper's claims it
    checks. A protocol file written before this section existed may give ``report: PATH``."""

    path: str = field("docs/results.md", "the generated report")
    reference: str = field(
        "", "the row the main table's differences are taken against (default: the first row)"
    )
    reference_text: str = field("", "how the text names that row (default: its label)")
    main_title: str = field("", "heading of the main table (default: Main comparison, xS)")
    paper: str = field("", "Markdown: what the paper claims and what is compared (a section)")
    tables: list[ReportTable] = field([], "ablation tables")
    claims: list[ReportClaim] = field([], "claims checked in the reading, in order")
    alpha0: Alpha0Claim = dataclasses.field(default_factory=Alpha0Claim)
    observations: list[ReportObservation] = field([], "sentences generated from the numbers")
    regime: RegimeSection = dataclasses.field(default_factory=RegimeSection)
    include: list[str] = field(
        [],
        "other protocol files (paths as for 'facd reproduce') whose main table this report shows, "
        "generated from their results, with a link to their own report",
    )
    readme: str = field(
        "",
        "a file (e.g. README.md) whose 'What we found' section, between the markers "
        "<!-- what-we-found --> and <!-- /what-we-found -->, the report rewrites from its claims",
    )

    def names(self) -> list[tuple[str, str]]:
        """(where, name) of every row or method the section names."""
        out = [("report.reference", self.reference)] if self.reference else []
        for key in ("gap_row", "alpha0_row"):
            if getattr(self.regime, key):
                out.append((f"report.regime.{key}", getattr(self.regime, key)))
        for i, t in enumerate(self.tables):
            out += [(f"report.tables[{i}].rows", n) for n in t.rows]
        for i, c in enumerate(self.claims):
            out += [(f"report.claims[{i}].rows", n) for n in c.rows]
        if self.alpha0.row:
            out.append(("report.alpha0.row", self.alpha0.row))
        for i, o in enumerate(self.observations):
            out += [(f"report.observations[{i}].text", n) for n in o.names()]
        return out
