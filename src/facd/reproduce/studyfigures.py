"""The figures of a study over one knob: the distillation weight (lambda) and the budget.

* **Lambda curve** (:func:`lambda_points`, :func:`draw_lambda`): a protocol's rows that run
  one method at fixed weights (``Row.weight``, e.g. FACD at lambda 0, 0.4, ... 1020) against
  the row of their group that has no fixed weight (the reference, e.g. TS at the same budget).
  At each weight: ``row - reference`` per seed, paired by seed, on the mean Y-PSNR over the
  evaluation sets; the mean and its 95 % Student-t interval (:meth:`Diff.ci95`). The x axis is
  symmetric-logarithmic (linear below the smallest positive weight), so that lambda = 0 sits
  one decade's width left of it.
* **Gain against budget** (:func:`budget_series`, :func:`draw_budget`): ``target - other`` at
  each budget fraction (``target``: the method of the protocol's first claim, :func:`study_target`) (``Row.schedule``: B/4, B/2, B) where both methods have a row without a
  fixed weight; one line per other method present at two or more budgets. Mean over paired
  seeds with its 95 % t-interval; the x axis is log2 of the fraction.

Which rows form a curve is read from the rows themselves (method, weight, schedule, group),
never from their names. The figures use the colours and sizes of :mod:`facd.reproduce.figures`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facd.reproduce.figures import (
    MEAN_COLOUR,
    SEED_COLOUR,
    ZERO_COLOUR,
    existing_file,
    new_figure,
    relative_link,
    save_figure,
    signed_tick,
)
from facd.reproduce.stats import Diff

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from facd.reproduce.protocol import Row
    from facd.reproduce.results import Results

__all__ = [
    "BudgetSeries",
    "LambdaCurve",
    "budget_series",
    "draw_budget",
    "draw_lambda",
    "lambda_points",
    "study_figure_lines",
]

LAMBDA_PNG, BUDGET_PNG = "lambda.png", "budget.png"
#: One colour per compared method in the budget figure (in protocol order).
SERIES_COLOURS = ("#142d6e", "#e16414", "#2a9d5c", "#8c3cb4", "#b4a03c")

LAMBDA_ALT = (
    "Difference against the contrast weight lambda: the seeds' paired differences as dots, "
    "their mean with its 95 % t-interval at each weight, and zero"
)
BUDGET_ALT = (
    "Gain against budget: the target method minus each other method at each budget fraction, "
    "the mean over paired seeds with its 95 % t-interval, and zero"
)


@dataclass(frozen=True)
class LambdaCurve:
    """``row - reference`` at each fixed weight, in increasing weight."""

    label: str  # the method's rows, e.g. "FACD, B/2"
    reference: str  # the reference row's name
    weights: tuple[float, ...]
    rows: tuple[str, ...]
    diffs: tuple[Diff, ...]


@dataclass(frozen=True)
class BudgetSeries:
    """``target - other`` at each budget fraction where both have results."""

    other: str  # method
    label: str  # e.g. "FACD − TS"
    fractions: tuple[float, ...]
    diffs: tuple[Diff, ...]


def _has(res: Results, row: Row) -> bool:
    return bool(res.row_runs(row))


def lambda_points(res: Results) -> LambdaCurve | None:
    """The first group whose rows run one method at two or more fixed weights with results,
    against the one row of that group without a fixed weight (None if there is no such group)."""
    groups = dict.fromkeys(r.group for r in res.proto.rows if r.weight is not None)
    for group in groups:
        rows = [r for r in res.proto.rows if r.group == group and not r.skip]
        fixed = [r for r in rows if r.weight is not None and _has(res, r)]
        refs = [r for r in rows if r.weight is None and _has(res, r)]
        if len({r.method for r in fixed}) != 1 or len(refs) != 1:
            continue
        points = []
        for r in sorted(fixed, key=lambda r: float(r.weight or 0.0)):
            d = res.diff(r.name, refs[0].name, None)
            if d is not None:
                points.append((float(r.weight or 0.0), r.name, d))
        if len(points) >= 2:
            w, names, diffs = zip(*points, strict=True)
            label = res.proto.label(fixed[0].method)
            return LambdaCurve(label, refs[0].name, w, names, diffs)
    return None


def study_target(res: Results) -> str | None:
    """The method the budget figure is about: that of the first row of the protocol's first
    claim (e.g. FACD in "FACD improves the student over scratch"); None without claims."""
    claims = res.proto.report.claims
    return res.proto.row(claims[0].rows[0]).method if claims else None


def budget_series(res: Results, target: str) -> list[BudgetSeries]:
    """``target - m`` against the budget fraction for every other method ``m`` with rows
    (without a fixed weight, with results) at two or more budgets shared with ``target``.
    Where a method has two rows at one budget, the first in protocol order counts."""
    at: dict[str, dict[float, str]] = {}
    for r in res.proto.rows:
        if r.weight is None and not r.skip and _has(res, r):
            at.setdefault(r.method, {}).setdefault(float(r.schedule), r.name)
    mine = at.get(target, {})
    out = []
    for method, rows in at.items():
        if method == target:
            continue
        points = []
        for frac in sorted(set(rows) & set(mine)):
            d = res.diff(mine[frac], rows[frac], None)
            if d is not None:
                points.append((frac, d))
        if len(points) >= 2:
            fracs, diffs = zip(*points, strict=True)
            label = f"{res.proto.label(target)} − {res.proto.label(method)}"
            out.append(BudgetSeries(method, label, fracs, diffs))
    return out


def _interval(ax: Axes, x: float, d: Diff, colour: str) -> None:
    ci = d.ci95()
    if ci is not None:
        ax.plot([x, x], list(ci), color=colour, lw=2.5, alpha=0.55, gid="interval", zorder=3)


def _finish(ax: Axes, ylabel: str) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.axhline(0.0, color=ZERO_COLOUR, lw=1, zorder=2)
    ax.grid(color="#e4e4e4", lw=0.8, zorder=0)
    ax.yaxis.set_major_formatter(FuncFormatter(signed_tick))
    ax.set_ylabel(ylabel, fontsize=10)
    ax.tick_params(labelsize=9)


def lambda_figure(curve: LambdaCurve, ref_label: str, sets_text: str) -> Figure:
    """One panel: seeds (gid ``seeds``), mean line (gid ``mean``), 95 % intervals (gid
    ``interval``) against the weight on a symlog axis."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter

    fig = new_figure(4.2)
    ax = fig.add_subplot(1, 1, 1)
    positive = [w for w in curve.weights if w > 0]
    ax.set_xscale("symlog", linthresh=min(positive) if positive else 1.0)
    xs, ys = [], []
    for w, d in zip(curve.weights, curve.diffs, strict=True):
        xs += [w] * d.n
        ys += list(d.values)
        _interval(ax, w, d, MEAN_COLOUR)
    ax.plot(xs, ys, ls="", marker="o", ms=5, color=SEED_COLOUR, gid="seeds", zorder=3)
    means = [d.mean for d in curve.diffs]
    ax.plot(curve.weights, means, color=MEAN_COLOUR, lw=2, marker="s", ms=6, gid="mean", zorder=4)
    ax.xaxis.set_major_locator(FixedLocator(list(curve.weights)))
    ax.xaxis.set_minor_locator(FixedLocator([]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    ax.set_xlabel("lambda (config units: 255 x lambda on [0, 1] images)", fontsize=10)
    _finish(ax, f"Y-PSNR, {curve.label} − {ref_label} (dB)")
    ax.set_title(
        f"{curve.label} − {ref_label} against lambda, mean Y-PSNR over {sets_text}",
        loc="left",
        fontsize=11,
        fontweight="bold",
    )
    handles = [
        Line2D([], [], ls="", marker="o", color=SEED_COLOUR, label="one seed (paired)"),
        Line2D([], [], color=MEAN_COLOUR, marker="s", lw=2, label="mean"),
        Line2D([], [], color=MEAN_COLOUR, alpha=0.55, lw=2.5, label="95 % t-interval"),
    ]
    ax.legend(
        handles=handles, fontsize=9, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1)
    )
    return fig


def budget_figure(series: Sequence[BudgetSeries], iterations: int | None, sets_text: str) -> Figure:
    """One panel: per series its mean (gid ``mean-<method>``) with 95 % intervals against the
    budget fraction, the seeds as small dots (gid ``seeds-<method>``), on a log2 axis."""
    from matplotlib.ticker import FixedLocator, FuncFormatter

    fig = new_figure(4.2)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_xscale("log", base=2)
    fracs = sorted({f for s in series for f in s.fractions})
    step = 2 ** (0.04 * (len(series) - 1))  # spread the series apart around each budget
    for i, s in enumerate(series):
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        shift = step ** (i - (len(series) - 1) / 2)
        xs = [f * shift for f in s.fractions]
        for x, d in zip(xs, s.diffs, strict=True):
            _interval(ax, x, d, colour)
            ax.plot([x] * d.n, d.values, ls="", marker="o", ms=3.5, color=colour, alpha=0.5,
                    gid=f"seeds-{s.other}", zorder=3)  # fmt: skip
        ax.plot(xs, [d.mean for d in s.diffs], color=colour, lw=2, marker="s", ms=6,
                label=s.label, gid=f"mean-{s.other}", zorder=4)  # fmt: skip
    ax.xaxis.set_major_locator(FixedLocator(fracs))
    ax.xaxis.set_minor_locator(FixedLocator([]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: _budget_label(v, iterations)))
    ax.set_xlim(min(fracs) / 1.3, max(fracs) * 1.3)
    ax.set_xlabel("training budget (iterations)", fontsize=10)
    _finish(ax, "Y-PSNR difference (dB)")
    ax.set_title(
        f"Gain against budget, mean Y-PSNR over {sets_text}",
        loc="left",
        fontsize=11,
        fontweight="bold",
    )
    ax.legend(fontsize=9, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def _budget_label(frac: float, iterations: int | None) -> str:
    """``B/4`` over its iteration count (``B/4\n1,500``); the name alone without ``iterations``."""
    name = "B" if abs(frac - 1) < 1e-9 else f"B/{round(1 / frac):d}"
    return name if iterations is None else f"{name}\n{round(frac * iterations):,}"


def draw_lambda(res: Results, path: str | Path) -> Path | None:
    """:func:`lambda_figure` written to ``path``; None (nothing written) without a curve."""
    curve = lambda_points(res)
    if curve is None:
        return None
    fig = lambda_figure(curve, res.proto.label(curve.reference), ", ".join(res.sets))
    return save_figure(fig, path, palette=True)


def draw_budget(res: Results, path: str | Path, iterations: int | None) -> Path | None:
    """:func:`budget_figure` of :func:`study_target`'s method, written to ``path``; None
    (nothing written) without a series."""
    target = study_target(res)
    series = budget_series(res, target) if target is not None else []
    if not series:
        return None
    return save_figure(budget_figure(series, iterations, ", ".join(res.sets)), path, palette=True)


def study_figure_lines(
    res: Results,
    fig_dir: str | Path,
    report_path: str | Path,
    iterations: int | None,
    draw: bool,
) -> list[str]:
    """Markdown lines for the lambda and budget figures (drawn with ``draw``, else those on
    disk), each with alt text and a caption; empty where the protocol has neither curve."""
    fig_dir, report_path = Path(fig_dir), Path(report_path)
    if draw:
        lam = draw_lambda(res, fig_dir / LAMBDA_PNG)
        bud = draw_budget(res, fig_dir / BUDGET_PNG, iterations)
    else:
        lam, bud = existing_file(fig_dir / LAMBDA_PNG), existing_file(fig_dir / BUDGET_PNG)
    out: list[str] = []
    if lam is not None:
        out += [
            f"![{LAMBDA_ALT}]({relative_link(lam, report_path)})",
            "",
            "The rows at fixed weights minus their reference at the same budget, paired by "
            "seed: dots are single seeds, squares their mean, bars the 95 % Student-t interval; "
            "the axis is linear below the smallest positive weight, so lambda = 0 sits at its "
            "left.",
            "",
        ]
    if bud is not None:
        out += [
            f"![{BUDGET_ALT}]({relative_link(bud, report_path)})",
            "",
            "Each line is one difference at B/4, B/2 and B (rows without a fixed weight), "
            "paired by seed: squares are means, bars 95 % Student-t intervals, small dots "
            "single seeds; the lines are set slightly apart along x to stay readable.",
            "",
        ]
    return out
