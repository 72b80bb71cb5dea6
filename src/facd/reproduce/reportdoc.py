"""The report being written: the protocol's results, the Markdown lines so far, its claims
judged (:class:`facd.reproduce.claims.ClaimJudge`) and the reports of the protocols it includes.

The sections are functions of a :class:`Report` in :mod:`facd.reproduce.tables`,
:mod:`facd.reproduce.checktables`, :mod:`facd.reproduce.summary`, :mod:`facd.reproduce.reading`
and :mod:`facd.reproduce.reportfigures`; :func:`facd.reproduce.report.write_report` puts them in
order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from facd.reproduce.claims import ClaimJudge
from facd.reproduce.results import Results

if TYPE_CHECKING:
    from facd.reproduce.protocol import Row


class Report:
    """Builds the Markdown text; ``command`` is how to regenerate it."""

    def __init__(self, res: Results, command: str, protocol_path: str) -> None:
        self.r = res
        self.p = res.proto
        self.command = command
        self.protocol_path = protocol_path
        self.lines: list[str] = []
        self.claims = ClaimJudge(res)
        self._included: list[tuple[str, Report]] | None = None

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def label(self, name: str) -> str:
        return self.p.label(name)

    @property
    def ref(self) -> str:
        """The row the main table's differences are taken against."""
        return self.p.reference

    def ref_at_budget(self, row: Row) -> str | None:
        """The reference row at ``row``'s budget: :attr:`ref` where the schedules agree, else
        a row of the reference's method at ``row``'s schedule and its own weight (e.g.
        "Scratch, B/2" for a B/2 row); None where the protocol has none, so that no row is set
        against a reference trained for longer or shorter."""
        main = self.p.row(self.ref)
        if row.schedule == main.schedule:
            return main.name
        for other in self.p.rows:
            same = other.method == main.method and other.schedule == row.schedule
            if same and other.weight is None and not other.skip:
                return other.name
        return None

    def included(self) -> list[tuple[str, Report]]:
        """The protocols this report includes (``report.include``), each as a Report of its
        own results."""
        if self._included is None:
            from facd.reproduce.protocol import load_protocol

            self._included = []
            for path in self.p.report.include:
                other = load_protocol(path)
                self._included.append((path, Report(Results.load(other), self.command, path)))
        return self._included

    def text(self) -> str:
        return "\n".join(self.lines).rstrip() + "\n"
