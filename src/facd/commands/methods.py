"""``facd methods [NAME ...] [--wide | --json | --markdown] [--plugin MODULE]``: the methods and
their loss terms (``--plugin``: also those that MODULE declares when imported).

Reads the method and term declarations (:mod:`facd.distill.methods`), the one place that
defines them; the same rows make the method table of docs/methods.md (``--markdown``). For every
term it shows the weight as given by the method's paper or code (tuned for images in
[0, ``paper range``]) and the weight used here, on [0, 1] images: pixel weights are unchanged,
other weights are divided by the paper range (see ``methods.py``).

The text table fits :data:`WIDTH` columns: the terms wrap onto continuation lines (a term is
never split unless it alone is wider than its column) and the source column is left out.
``--wide`` prints one line per method with every column, however long.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence

#: Columns of the default text table (``--wide``: no limit).
WIDTH = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="only these methods")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument(
        "--wide",
        action="store_true",
        help=f"one line per method, with sources (over {WIDTH} columns)",
    )
    fmt.add_argument("--json", action="store_true", help="print JSON")
    fmt.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument(
        "--plugin",
        dest="plugins",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first, so that the methods it declares are listed (as facd train)",
    )


def method_rows(names: list[str] | None = None) -> list[dict]:
    """One dict per method: label, terms with paper and effective weights and needs, range,
    teacher, teacher stage, source (all read from the declarations)."""
    from facd.distill.methods import METHODS, get_method
    from facd.distill.terms import TERMS

    rows = []
    for name in names or list(METHODS):
        m = get_method(name)
        opts = m.loss_options()
        weight_keys = {TERMS[t].weight_key for t in TERMS}
        terms = []
        for term, weight in m.terms:
            spec = TERMS[term]
            given = m.paper_weights.get(spec.section, {})
            options = {k: v for k, v in given.items() if k not in weight_keys}
            terms.append(
                {
                    "term": term,
                    "paper_weight": given.get(spec.weight_key, weight),
                    "weight": weight,
                    "options": options,
                    "needs": spec.needs(opts).describe(),
                }
            )
        rows.append(
            {
                "method": m.name,
                "label": m.label,
                "summary": m.summary,
                "terms": terms,
                "paper_range": m.paper_range,
                "needs_teacher": m.needs_teacher,
                "needs": m.needs.describe(),
                "teacher_stage": m.teacher_stage,
                "source": m.source or "FACD paper",
            }
        )
    return rows


def _num(x: float) -> str:
    return f"{x:.4g}"


def _value(v: object) -> str:
    if isinstance(v, list):
        return "[" + ",".join(_num(x) if isinstance(x, float) else str(x) for x in v) + "]"
    return _num(v) if isinstance(v, float) else str(v)


def format_term(t: dict) -> str:
    opts = ",".join(f"{k}={_value(v)}" for k, v in t["options"].items())
    label = f"{t['term']}[{opts}]" if opts else t["term"]
    w = _num(t["paper_weight"])
    return (
        f"{label} {w}" if t["paper_weight"] == t["weight"] else f"{label} {w}->{_num(t['weight'])}"
    )


_HEAD = ("method", "terms: paper weight -> weight on [0,1]", "range", "teacher", "source")


def _cells(r: dict) -> tuple[str, list[str], str, str, str]:
    return (
        r["method"],
        [format_term(t) for t in r["terms"]],
        f"0-{r['paper_range']}",
        "yes" if r["needs_teacher"] else "no",
        r["source"],
    )


def _pack(terms: list[str], width: int) -> list[str]:
    """Terms joined by ", " into lines of at most ``width`` characters (greedy). A term wider
    than ``width`` alone is split after a comma or a space inside it, else anywhere."""
    lines: list[str] = []
    line = ""
    for i, term in enumerate(terms):
        piece = term + ("," if i < len(terms) - 1 else "")
        if line and len(line) + 1 + len(piece) <= width:
            line += " " + piece
            continue
        if line:
            lines.append(line)
        line = ""
        for chunk in re.findall(r"[^, ]+[, ]?|[, ]", piece):
            if line and len(line) + len(chunk.rstrip()) > width:
                lines.append(line.rstrip())
                line = ""
            while len(chunk.rstrip()) > width:  # no comma or space to break at
                lines.append(chunk[:width])
                chunk = chunk[width:]
            line += chunk
        line = line.rstrip()
    lines.append(line)
    return lines


def format_text(rows: list[dict], wide: bool = False, width: int = WIDTH) -> str:
    """The table as text: ``wide`` one line per method with every column; otherwise at most
    ``width`` columns, terms wrapped and the source column left out."""
    cells = [_cells(r) for r in rows]
    if wide:
        table = [_HEAD] + [(m, ", ".join(t), rg, te, src) for m, t, rg, te, src in cells]
        return _align(table)
    fixed = [max(len(row[i]) for row in [_HEAD, *cells]) for i in (0, 2, 3)]
    terms_width = max(20, width - sum(fixed) - 2 * 3)
    packed: list[tuple[str, ...]] = [_HEAD[:4]]
    for method, terms, rng, teacher, _ in cells:
        lines = _pack(terms, terms_width)
        packed.append((method, lines[0], rng, teacher))
        packed.extend(("", more, "", "") for more in lines[1:])
    text = _align(packed)
    return text + "\n(sources, and one line per method: facd methods --wide)"


def _align(table: Sequence[tuple[str, ...]]) -> str:
    """Columns padded to their widest cell, two spaces apart; the last one is not padded."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    lines = []
    for row in table:
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_markdown(rows: list[dict]) -> str:
    """The table of docs/methods.md (a test checks that the page holds exactly this)."""
    lines = [
        "| method | label | terms: paper weight -> weight on [0,1] images | paper pixel range "
        "| needs | source |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        terms = "<br>".join(f"`{format_term(t)}`" for t in r["terms"])
        needs = ", ".join(r["needs"]) or "nothing but the data"
        if r["teacher_stage"]:
            needs += f" (stage `{r['teacher_stage']}` first)"
        lines.append(
            f"| `{r['method']}` | {r['label']} | {terms} | 0-{r['paper_range']} "
            f"| {needs} | {r['source']} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from facd.commands.train import import_plugins

    import_plugins(args.plugins)
    rows = method_rows(args.names or None)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif args.markdown:
        print(format_markdown(rows))
    else:
        print(format_text(rows, wide=args.wide))
    return 0
