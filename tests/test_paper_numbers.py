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


# ------------------------------------------------------------ the paper's numbers in protocols

#: A number with three decimals (the paper's precision), with its sign if any.
_THREE_DECIMALS = re.compile(r"(?<![\d.])[-+−]?(\d+\.\d{3})(?![\d.])")


def _paper_values() -> list[float]:
    """Every number the paper's tables give or imply at three decimals: each value, each row's
    mean over any of its sets, and the difference of two rows of one table, architecture and
    scale (value or mean over the same sets), as a magnitude."""
    from itertools import combinations

    out: list[float] = []
    for t in TABLES.values():
        for arch, scale in t.where():
            rows = [t.rows[(arch, scale, r)] for r in t.row_names(arch, scale)]
            subsets = {
                tuple(c) for v in rows for k in range(1, len(v) + 1) for c in combinations(v, k)
            }
            means = [
                {s: sum(v[x] for x in s) / len(s) for s in subsets if all(x in v for x in s)}
                for v in rows
            ]
            for m in means:
                out += m.values()
            for a, b in combinations(means, 2):
                out += [abs(a[s] - b[s]) for s in a if s in b]
    return out


def _protocol_paper_texts(path: Path) -> list[tuple[str, str]]:
    """(where, text) of a protocol file's text that quotes the paper: its comments, the report's
    paper section, table headings and paragraphs, claims' texts, the paper figures of the regime
    and alpha sections, and the rows' and teacher stage's notes. The description and the
    observations are left out: they state this project's own measurements."""
    import yaml

    text = path.read_text(encoding="utf-8")
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        quote = ""
        for j, ch in enumerate(line):
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "'\"":
                quote = ch
            elif ch == "#" and (j == 0 or line[j - 1].isspace()):
                out.append((f"line {i} (comment)", line[j:]))
                break
    doc = yaml.safe_load(text)
    report = doc.get("report") or {}
    out.append(("report.paper", report.get("paper", "")))
    for k, t in enumerate(report.get("tables") or []):
        out.append((f"report.tables[{k}]", f"{t.get('title', '')} {t.get('about', '')}"))
    for k, c in enumerate(report.get("claims") or []):
        out.append((f"report.claims[{k}]", f"{c.get('text', '')} {c.get('paper', '')}"))
    regime, alpha0 = report.get("regime") or {}, report.get("alpha0") or {}
    for key in ("gap_paper_text", "alpha0_paper_text"):
        out.append((f"report.regime.{key}", str(regime.get(key, ""))))
    out.append(("report.regime.gap_paper_db", f"{regime.get('gap_paper_db', 0):.3f}"))
    out.append(("report.alpha0.paper_text", str(alpha0.get("paper_text", ""))))
    for k, r in enumerate(doc.get("rows") or []):
        out.append((f"rows[{k}].note", str(r.get("note", ""))))
    out.append(("teacher_stage.note", str((doc.get("teacher_stage") or {}).get("note", ""))))
    return out


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "repro").glob("*.yaml")), ids=str)
def test_protocols_quote_only_the_papers_numbers(path: Path) -> None:
    """Every three-decimal number a protocol quotes from the paper is one of the paper's values
    (:mod:`facd.reproduce.paper`), a mean of a row over some of its sets, or a difference of two
    rows, at the table's three decimals (half a unit of the last digit). No number of that form
    in these texts is anything but dB, so there is no allow-list."""
    allowed = _paper_values()
    wrong = []
    for where, text in _protocol_paper_texts(path):
        for m in _THREE_DECIMALS.finditer(text):
            value = float(m.group(1))
            if value and not any(abs(value - v) <= 0.0005 + 1e-9 for v in allowed):
                wrong.append(f"{where}: {m.group(0)}")
    assert not wrong, f"{path.name}: numbers not in the paper's tables: {wrong}"


def test_the_check_finds_a_wrong_number() -> None:
    """The check above would catch the numbers it was written for: Table 11's four-set means
    misquoted by 3 dB, and the RCAN x4 teacher's mean rounded to 29.000 (it is 28.996)."""
    allowed = _paper_values()
    for good in (28.568, 28.580, 28.996, 0.317, 0.271, 38.593):
        assert any(abs(good - v) <= 0.0005 + 1e-9 for v in allowed), good
    for bad in (31.568, 31.580, 29.000):
        assert not any(abs(bad - v) <= 0.0005 + 1e-9 for v in allowed), bad
