"""The FACD paper's published numbers as data, and the paper's own difference between two rows.

Transcribed from the paper's tables (Moon et al., IEEE Access 2023; the project keeps a copy in
``docs/PAPER-TABLES.md`` of the shared documents, and a test checks every number here against
it). Y-PSNR in dB; Table 13 is the student's output against the teacher's output.

Choices:

- A row is named as the paper prints it (``FAKD*``, ``FCD(SA)``, ``Eq. 6``); the rows of
  Table 8 are named by the loss components they check (``L1_GT+L1_T+FCD``).
- Rows the paper copied from other papers (Table 2's unmarked ``LFD`` and ``LSFD``) are kept
  as data but are refused as a claim's reference (:func:`check_ref`): the paper's own
  comparison is with the rows it re-ran (``FAKD*``, ``LFD*``, ``PISR*``).
- A paper difference ``a - b`` is the mean over the sets both rows give of ``a`` minus the same
  mean of ``b`` (:func:`paper_diff`); a caller may restrict it to the sets it measures.
- Tables 6, 7, 10 and 12 are EDSR x2 (the paper's ablations); Table 11 is EDSR x4, Table 8
  RCAN x4, Table 13 RCAN; Table 9 gives B100 and Urban100 only (its middle pair, labelled x2
  again in the paper, is x3 by its values).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from facd.reproduce.stats import mean

SETS = ("Set5", "Set14", "B100", "Urban100")


def arch_name(arch: str) -> str:
    """How the reports name an architecture: its declaration's title (``EDSR``)."""
    from facd.archs import get_arch
    from facd.errors import ConfigError

    try:
        return get_arch(arch).title
    except ConfigError:  # not registered in this process
        return arch.upper()


@dataclass(frozen=True)
class PaperTable:
    """One of the paper's tables: ``(arch, scale, row) -> {set: value}``."""

    name: str
    title: str
    rows: dict[tuple[str, int, str], dict[str, float]]
    metric: str = "psnr_y"
    copied: frozenset[str] = frozenset()  # rows copied from other papers (not re-run)

    def row_names(self, arch: str, scale: int) -> list[str]:
        return [r for (a, s, r) in self.rows if a == arch and s == scale]

    def where(self) -> list[tuple[str, int]]:
        """The (arch, scale) pairs the table gives, in order."""
        out: list[tuple[str, int]] = []
        for a, s, _ in self.rows:
            if (a, s) not in out:
                out.append((a, s))
        return out


def _rows(
    arch: str, scale: int, text: str, sets: tuple[str, ...] = SETS
) -> dict[tuple[str, int, str], dict[str, float]]:
    """Rows written one a line as ``NAME v1 v2 ...`` (NAME without spaces, or ``Eq. 6``)."""
    out = {}
    for line in text.strip().splitlines():
        parts = line.split()
        values = [float(v) for v in parts[-len(sets) :]]
        out[(arch, scale, " ".join(parts[: -len(sets)]))] = dict(zip(sets, values, strict=True))
    return out


_T2_EDSR = {
    2: """
        Teacher 38.190 33.857 32.351 32.873
        Student 37.919 33.439 32.102 31.728
        FAKD* 37.976 33.523 32.156 31.906
        LFD 37.984 33.547 32.156 31.896
        LFD* 37.986 33.528 32.159 31.935
        LSFD 37.991 33.529 32.157 31.936
        PISR* 37.971 33.557 32.166 32.025
        FACD 38.043 33.588 32.188 32.072
    """,
    3: """
        Teacher 34.547 30.435 29.167 28.470
        Student 34.272 30.266 29.044 27.959
        FAKD* 34.356 30.296 29.066 28.016
        LFD 34.348 30.287 29.068 27.999
        LFD* 34.333 30.301 29.077 28.022
        LSFD 34.384 30.302 29.077 28.029
        PISR* 34.362 30.317 29.083 28.058
        FACD 34.394 30.333 29.103 28.125
    """,
    4: """
        Teacher 32.385 28.741 27.661 26.425
        Student 32.102 28.526 27.538 25.905
        FAKD* 32.138 28.547 27.557 25.972
        LFD 32.107 28.524 27.552 25.962
        LFD* 32.099 28.557 27.546 25.962
        LSFD 32.107 28.548 27.563 25.980
        PISR* 32.110 28.573 27.559 25.987
        FACD 32.128 28.580 27.580 26.029
    """,
}

_T2_RCAN = {
    2: """
        Teacher 38.271 34.126 32.390 33.176
        Student 38.074 33.623 32.199 32.317
        FAKD* 38.164 33.815 32.274 32.533
        LFD 38.178 33.840 32.296 32.669
        LFD* 38.180 33.851 32.305 32.681
        LSFD 38.189 33.882 32.323 32.704
        PISR* 38.254 33.941 32.326 32.789
        FACD 38.242 34.016 32.334 32.878
    """,
    3: """
        Teacher 34.758 30.627 29.309 29.104
        Student 34.557 30.408 29.162 28.482
        FAKD* 34.653 30.449 29.208 28.523
        LFD 34.657 30.525 29.224 28.665
        LFD* 34.659 30.515 29.226 28.672
        LSFD 34.666 30.510 29.227 28.689
        PISR* 34.691 30.533 29.215 28.751
        FACD 34.729 30.563 29.262 28.818
    """,
    4: """
        Teacher 32.638 28.851 27.748 26.748
        Student 32.321 28.688 27.634 26.340
        FAKD* 32.461 28.750 27.678 26.422
        LFD 32.475 28.783 27.693 26.542
        LFD* 32.479 28.774 27.688 26.547
        LSFD 32.497 28.711 27.699 26.525
        PISR* 32.512 28.796 27.689 26.538
        FACD 32.540 28.810 27.708 26.606
    """,
}

_T4 = {
    2: "CSD* 38.001 33.536 32.160 31.984\nFCD 38.015 33.552 32.174 32.023",
    3: "CSD* 34.378 30.309 29.082 28.020\nFCD 34.379 30.318 29.099 28.086",
    4: "CSD* 32.112 28.563 27.569 25.988\nFCD 32.121 28.578 27.571 26.011",
}

_T9 = {
    ("edsr", 2): "FCD 32.183 32.064\nFACD 32.188 32.072",
    ("edsr", 3): "FCD 29.096 28.124\nFACD 29.103 28.125",
    ("edsr", 4): "FCD 27.578 26.013\nFACD 27.580 26.029",
    ("rcan", 2): "FCD 32.331 32.851\nFACD 32.334 32.878",
    ("rcan", 3): "FCD 29.242 28.771\nFACD 29.262 28.818",
    ("rcan", 4): "FCD 27.689 26.562\nFACD 27.708 26.606",
}

_T13 = {
    2: """
        FAKD* 49.581 43.808 45.342 38.917
        LFD* 50.120 44.231 46.633 39.351
        PISR* 50.623 44.828 46.823 40.551
        FACD 50.882 45.019 46.881 40.757
    """,
    3: """
        FAKD* 45.390 40.677 42.472 35.279
        LFD* 45.518 41.919 42.883 35.433
        PISR* 45.887 42.007 43.135 36.551
        FACD 45.922 42.083 43.397 36.684
    """,
    4: """
        FAKD* 42.137 38.562 40.461 33.210
        LFD* 42.233 39.019 40.888 33.677
        PISR* 42.820 39.231 41.106 33.951
        FACD 42.954 39.481 41.358 34.088
    """,
}


def _merge(*parts: dict) -> dict:
    out: dict = {}
    for p in parts:
        out.update(p)
    return out


TABLES: dict[str, PaperTable] = {
    t.name: t
    for t in (
        PaperTable(
            "2",
            "main results",
            _merge(
                *(_rows("edsr", s, text) for s, text in _T2_EDSR.items()),
                *(_rows("rcan", s, text) for s, text in _T2_RCAN.items()),
            ),
            copied=frozenset({"LFD", "LSFD"}),
        ),
        PaperTable(
            "4",
            "CSD vs FCD, EDSR with an R16C256 teacher",
            _merge(*(_rows("edsr", s, text) for s, text in _T4.items())),
        ),
        PaperTable(
            "6",
            "contrastive domain",
            _rows(
                "edsr",
                2,
                """
                ICD 37.983 33.558 32.159 32.020
                CSD* 38.001 33.536 32.160 31.944
                FCD 38.025 33.581 32.183 32.064
                """,
            ),
        ),
        PaperTable(
            "7",
            "contrastive form",
            _rows(
                "edsr",
                2,
                "FCD(InfoNCE) 38.005 33.556 32.173 32.028\nFCD 38.025 33.581 32.183 32.064",
            ),
        ),
        PaperTable(
            "8",
            "loss components",
            _rows(
                "rcan",
                4,
                """
                L1_GT 32.321 28.688 27.634 26.340
                L1_GT+L1_T 32.362 28.722 27.657 26.402
                L1_GT+FCD 32.425 28.738 27.669 26.507
                L1_T+FCD 32.447 28.768 27.671 26.524
                L1_GT+L1_T+FCD 32.492 28.774 27.689 26.562
                L1_GT+L1_T+FACD 32.540 28.810 27.708 26.606
                """,
            ),
        ),
        PaperTable(
            "9",
            "FCD vs FACD",
            _merge(*(_rows(a, s, text, ("B100", "Urban100")) for (a, s), text in _T9.items())),
        ),
        PaperTable(
            "10",
            "tap weights, on FCD",
            _rows(
                "edsr",
                2,
                """
                FCD(FAA) 38.007 33.579 32.177 32.058
                FCD(FAB) 37.998 33.577 32.175 32.050
                FCD(FAT) 38.025 33.581 32.183 32.064
                """,
            ),
        ),
        PaperTable(
            "11",
            "indicator in the feature term",
            _rows(
                "edsr",
                4,
                "Eq. 7 32.120 28.571 27.568 26.013\nEq. 6 32.129 28.580 27.580 26.029",
            ),
        ),
        PaperTable(
            "12",
            "loss type x domain",
            _rows(
                "edsr",
                2,
                """
                FAKD* 37.976 33.523 32.156 31.906
                LFD* 37.986 33.518 32.159 31.935
                FCD(SA) 37.992 33.571 32.180 32.045
                FCD 38.025 33.581 32.183 32.064
                """,
            ),
        ),
        PaperTable(
            "13",
            "student output vs teacher output",
            _merge(*(_rows("rcan", s, text) for s, text in _T13.items())),
            metric="teacher_psnr",
        ),
    )
}


class PaperRefError(ValueError):
    """A reference to the paper that names no table, setting or row of it; ``key`` is the
    reference's key at fault (table, arch, scale or rows)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def check_ref(table: str, arch: str, scale: int, rows: list[str] | tuple[str, ...]) -> None:
    """Raise :class:`PaperRefError` unless the paper's ``table`` gives ``arch`` at ``scale``
    and both ``rows`` there, re-run by the paper's authors (not copied from another paper)."""
    t = TABLES.get(str(table))
    if t is None:
        raise PaperRefError("table", f"no Table {table!s} transcribed; tables: {', '.join(TABLES)}")
    if (arch, scale) not in t.where():
        given = ", ".join(f"{arch_name(a)} x{s}" for a, s in t.where())
        raise PaperRefError(
            "scale" if arch in {a for a, _ in t.where()} else "arch",
            f"Table {t.name} gives no {arch} x{scale}; it gives {given}",
        )
    if len(rows) != 2:
        raise PaperRefError("rows", f"needs [a, b], got {list(rows)}")
    names = t.row_names(arch, scale)
    for r in rows:
        if r not in names:
            raise PaperRefError(
                "rows",
                f"{r!r} is not a row of Table {t.name} at {arch_name(arch)} x{scale}; rows: "
                f"{', '.join(names)}",
            )
        if r in t.copied:
            raise PaperRefError(
                "rows",
                f"{r!r} in Table {t.name} is copied from another paper, not re-run by the "
                "paper's authors; use a re-run row (marked *), or a free 'paper' text",
            )


@dataclass(frozen=True)
class PaperDiff:
    """The paper's own difference ``a - b`` between two rows of one table."""

    value: float
    sets: tuple[str, ...]
    table: str
    arch: str
    scale: int
    rows: tuple[str, str]
    metric: str = "psnr_y"

    def where(self) -> str:
        """``Table 2, RCAN x4``."""
        return f"Table {self.table}, {arch_name(self.arch)} x{self.scale}"

    def text(self, digits: int = 3) -> str:
        """The value with its sign, rounded half away from zero (``+0.094`` for 0.0935): the
        table's values have three decimals, so their means often end in a 5."""
        q = Decimal(1).scaleb(-digits)
        v = Decimal(repr(round(self.value, 9))).quantize(q, rounding=ROUND_HALF_UP)
        return f"{v:+f}"


def paper_diff(
    table: str,
    arch: str,
    scale: int,
    a: str,
    b: str,
    sets: list[str] | tuple[str, ...] | None = None,
) -> PaperDiff:
    """``a - b`` in the paper's ``table`` at ``arch`` x``scale``: the mean over the sets both
    rows give (restricted to ``sets`` where that leaves at least one) of ``a`` minus that of
    ``b``. Raises :class:`PaperRefError` for a reference :func:`check_ref` refuses."""
    check_ref(table, arch, scale, (a, b))
    t = TABLES[str(table)]
    va, vb = t.rows[(arch, scale, a)], t.rows[(arch, scale, b)]
    common = [s for s in va if s in vb]
    if sets is not None and any(s in sets for s in common):
        common = [s for s in common if s in sets]
    value = mean([va[s] for s in common]) - mean([vb[s] for s in common])
    return PaperDiff(value, tuple(common), t.name, arch, scale, (a, b), t.metric)
