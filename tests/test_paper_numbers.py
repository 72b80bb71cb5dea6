"""The paper's numbers in :mod:`facd.reproduce.paper` are the published ones, and the paper's
own differences are computed from them as stated (mean over the sets both rows give)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from facd.reproduce.paper import TABLES, PaperRefError, check_ref, paper_diff

REPO = Path(__file__).resolve().parents[1]
PAPER_TABLES = REPO.parent / "shared" / "docs" / "PAPER-TABLES.md"

_NUM = r"(\d+\.\d{3})"
_PROSE = re.compile(rf"(?:: |; )([^;:]+?) {_NUM} / {_NUM} / {_NUM} / {_NUM}")
_SETS = ("Set5", "Set14", "B100", "Urban100")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_paper_tables(text: str) -> dict[tuple[str, str, int, str], dict[str, float]]:
    """``(table, arch, scale, row) -> {set: value}`` for Tables 2, 4, 6-13 of the file, read
    from its Markdown tables and its one-line tables (``Table 6, ...: ICD a / b / c / d; ...``)."""
    out: dict[tuple[str, str, int, str], dict[str, float]] = {}
    table, arch = "", ""
    for line in text.splitlines():
        head = re.match(r"(?:## )?Table (\d+)[,:]", line)
        if head:
            table = head.group(1)
            arch = {"2": "", "4": "edsr", "8": "rcan", "9": "", "13": "rcan"}.get(table, "edsr")
            if table in {"6", "7", "10", "11", "12"}:
                scale = 4 if "EDSR x4" in line else 2
                for m in _PROSE.finditer(line):
                    name = re.split(r" \(| \[", m.group(1))[0].strip()
                    out[(table, arch, scale, name)] = dict(
                        zip(_SETS, map(float, m.groups()[1:]), strict=True)
                    )
            continue
        if line.startswith("EDSR (teacher"):
            arch = "edsr"
        elif line.startswith("RCAN (teacher"):
            arch = "rcan"
        if not line.startswith("| ") or table not in {"2", "4", "8", "9", "13"}:
            continue
        cells = _cells(line)
        if not re.fullmatch(r"\d+\.\d{3}", cells[-1]):
            continue  # a header or separator
        values = [float(c) for c in cells[-4:]]
        if table == "8":
            name = "+".join(
                c
                for c, mark in zip(("L1_GT", "L1_T", "FCD", "FACD"), cells[:4], strict=True)
                if mark
            )
            if "FACD" in name:
                name = name.replace("+FCD", "")
            out[("8", "rcan", 4, name)] = dict(zip(_SETS, values, strict=True))
        elif table == "9":
            scale = int(cells[1].lstrip("x"))
            out[("9", "edsr", scale, cells[0])] = dict(
                zip(("B100", "Urban100"), values[:2], strict=True)
            )
            out[("9", "rcan", scale, cells[0])] = dict(
                zip(("B100", "Urban100"), values[2:], strict=True)
            )
        else:
            out[(table, arch, int(cells[1].lstrip("x")), cells[0])] = dict(
                zip(_SETS, values, strict=True)
            )
    return out


def _transcribed() -> dict[tuple[str, str, int, str], dict[str, float]]:
    return {(t.name, a, s, r): v for t in TABLES.values() for (a, s, r), v in t.rows.items()}


def test_every_transcribed_number_equals_the_paper_tables_file() -> None:
    if not PAPER_TABLES.is_file():
        pytest.skip(f"the paper's tables are not beside the checkout ({PAPER_TABLES.name} missing)")
    parsed = parse_paper_tables(PAPER_TABLES.read_text(encoding="utf-8"))
    ours = _transcribed()
    # Table 2: 2 archs x 3 scales x 8 rows; Tables 4, 6, 7, 8, 9, 10, 11, 12, 13
    assert len(parsed) == 48 + 6 + 3 + 2 + 6 + 12 + 3 + 2 + 4 + 12
    assert set(ours) == set(parsed)
    for key, values in parsed.items():
        assert set(ours[key]) == set(values), key
        for s, v in values.items():
            assert ours[key][s] == pytest.approx(v, abs=1e-9), (key, s)


def test_paper_differences_by_hand() -> None:
    d = paper_diff("2", "rcan", 4, "FACD", "FAKD*")
    # four-set means 28.916 - 28.828 (28.82775): +0.088
    assert d.value == pytest.approx(28.916 - 28.82775, abs=1e-6)
    assert round(d.value, 3) == pytest.approx(0.088)
    assert d.sets == ("Set5", "Set14", "B100", "Urban100") and d.where() == "Table 2, RCAN x4"
    t13 = paper_diff("13", "rcan", 4, "FACD", "FAKD*")
    assert t13.value == pytest.approx(0.878, abs=5e-4) and t13.metric == "teacher_psnr"
    # Table 9 gives two sets only; Eq. 6 vs Eq. 7 (Table 11) is the paper's smallest effect
    t9 = paper_diff("9", "edsr", 4, "FACD", "FCD")
    assert t9.sets == ("B100", "Urban100") and t9.value == pytest.approx(0.009, abs=1e-6)
    assert paper_diff("11", "edsr", 4, "Eq. 6", "Eq. 7").value == pytest.approx(0.0115, abs=1e-6)
    # restricted to the sets a protocol measures
    three = paper_diff("2", "edsr", 4, "FACD", "Student", sets=["Set5", "Set14", "B100"])
    assert three.sets == ("Set5", "Set14", "B100")
    assert three.value == pytest.approx((0.026 + 0.054 + 0.042) / 3, abs=1e-6)


@pytest.mark.parametrize(
    ("ref", "key", "match"),
    [
        (("3", "edsr", 4, ["FACD", "FAKD*"]), "table", "no Table 3"),
        (("8", "edsr", 4, ["FCD", "FACD"]), "arch", "gives no edsr x4; it gives RCAN x4"),
        (("11", "edsr", 2, ["Eq. 6", "Eq. 7"]), "scale", "gives no edsr x2"),
        (("2", "rcan", 4, ["FACD", "FAKD"]), "rows", "'FAKD' is not a row of Table 2"),
        (("2", "rcan", 4, ["FACD", "LSFD"]), "rows", "copied from another paper"),
    ],
)
def test_unknown_references_are_refused(ref: tuple, key: str, match: str) -> None:
    with pytest.raises(PaperRefError, match=match) as info:
        check_ref(*ref)
    assert info.value.key == key
