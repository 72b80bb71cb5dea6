"""The report's figures, drawn to be read at a glance.

* **Claim panels** (:func:`draw_claim_panels`): one small panel per claim ``a - b`` of the
  reading. Dots: the difference of each seed, paired by seed, on the mean over the evaluation
  sets; dark bar: their mean with its 95 % Student-t interval (``Diff.ci95``, two or more
  seeds); orange diamond: the paper's difference (given by the caller); line: zero. Axes: one
  y axis **shared by all panels of a metric** (Y-PSNR against HR; Y-PSNR against the teacher's
  output gets its own, on its own rows of panels), so effect sizes compare across claims. The
  axis spans the dots, means, paper values, zero and the intervals of three or more seeds; a
  two-seed interval (``t = 12.7``) may run off it and ends in an arrow there.
* **Curve differences** (:func:`draw_curve_differences`): one panel per row, its validation
  Y-PSNR minus the reference row's at the same iteration, paired by seed. Line: the mean over
  seeds; band: **min to max over seeds** (no band with one seed). The y axis is shared and fitted
  to the second half of training (early differences are large and would flatten the end, where
  the methods settle), so early points may be drawn on its edge.
* **Measured qualitative crops** (:func:`choose_crops`, :func:`draw_qualitative_measured`): two
  models super-resolve benchmark images exactly as the evaluation does (:class:`BenchmarkSet`
  LR, :func:`facd.evaluate.super_resolve`); a square window slides over each image inside the
  ``shave = scale`` border, and on each image the window where the two models' mean squared
  error on Y (the metrics' plane) differs most, ``|MSE_a - MSE_b|``, is kept; the K images whose
  windows differ most are shown. An absolute error gap, not a PSNR gap, is ranked: a PSNR gap
  is largest on flat crops where both models are nearly exact and nothing differs to the eye.
  The crop's PSNR difference is reported under the figure.

Every figure is :data:`WIDTH` (1000) px wide, the size the report embeds it at, with four
panels to a row (panels keep one size whatever their number), 12-19 px text and one colour per
role (:data:`SEED_COLOUR`, :data:`MEAN_COLOUR`, :data:`PAPER_COLOUR`, :data:`ZERO_COLOUR`). Text
inside the images is ASCII (``a - b``): Pillow's default font has no minus sign.

A report written without redrawing (:func:`figure_section` with ``draw=False``, ``facd
reproduce --no-figures``) links the figures already on disk; the crops figure keeps its
measured caption in the PNG (:data:`CAPTION_KEY`) for that.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from facd.compare import best_window, psnr_gap
from facd.errors import FacdError
from facd.fileio import atomic_write_bytes
from facd.reproduce.plots import (
    fit_text,
    font,
    nice_ticks,
    text_width,
    vertical_text,
    wrap_text,
    write_comparison,
)
from facd.reproduce.stats import mean

if TYPE_CHECKING:
    from torch import nn

    from facd.reproduce.protocol import ReportClaim
    from facd.reproduce.results import Results

__all__ = [
    "ClaimPoints",
    "CropChoice",
    "CurveBand",
    "best_window",
    "choose_crops",
    "claim_points",
    "curve_differences",
    "draw_claim_panels",
    "draw_curve_differences",
    "draw_qualitative_measured",
    "figure_section",
    "grid_height",
]

#: Width of every figure (px): the size at which the report embeds them.
WIDTH = 1000
#: One colour per role, the same in every figure.
SEED_COLOUR = (110, 150, 200)  # a seed's dot; the curve band is its light tint
BAND_COLOUR = (205, 220, 240)
MEAN_COLOUR = (20, 45, 110)  # the mean (and its interval bar, the mean curve)
PAPER_COLOUR = (225, 100, 20)  # the paper's difference
ZERO_COLOUR = (0, 0, 0)
GRID_COLOUR = (228, 228, 228)
TEXT_GREY = (80, 80, 80)

METRIC_AXIS = {
    "psnr_y": "Y-PSNR a - b (dB)",
    "teacher_psnr": "PSNR to teacher (dB)",
}

# Layout (px) shared by the two grids of panels.
LEFT, RIGHT, GAP_X = 88, 16, 18
#: Panels per row, always: panels keep one size (and text scale) whatever their number.
MAX_COLS = 4


# ---------------------------------------------------------------- the plotted numbers


@dataclass(frozen=True)
class ClaimPoints:
    """What one claim panel draws: the paired differences ``a - b`` of each seed (mean over
    the evaluation sets), their mean, its 95 % t-interval (None below two seeds) and the
    paper's difference."""

    a: str
    b: str
    title: str
    text: str
    metric: str
    seeds: tuple[int, ...]
    values: tuple[float, ...]
    mean: float
    ci: tuple[float, float] | None
    paper: float | None

    @property
    def n(self) -> int:
        return len(self.values)


def claim_points(
    res: Results,
    claims: Sequence[ReportClaim],
    paper_diffs: Sequence[float | None] | None = None,
) -> list[ClaimPoints]:
    """The claims that can be drawn, in order: both rows have results and share a seed (the
    others are left out). ``paper_diffs[i]`` is claim ``i``'s paper difference, or None."""
    out = []
    for i, claim in enumerate(claims):
        a, b = claim.rows
        if not (res.has(a) and res.has(b)):
            continue
        d = res.diff(a, b, None, claim.metric)
        if d is None or not all(math.isfinite(v) for v in d.values):
            continue
        paper = paper_diffs[i] if paper_diffs is not None and i < len(paper_diffs) else None
        out.append(
            ClaimPoints(
                a,
                b,
                f"{res.proto.label(a)} - {res.proto.label(b)}",
                claim.text,
                claim.metric,
                d.seeds,
                d.values,
                d.mean,
                d.ci95(),
                None if paper is None else float(paper),
            )
        )
    return out


@dataclass(frozen=True)
class CurveBand:
    """One row's validation curve minus the reference row's, paired by seed: at each
    iteration both curves hold, the mean, min and max over the seeds and how many there are."""

    row: str
    label: str
    seeds: tuple[int, ...]
    iterations: tuple[float, ...]
    mean: tuple[float, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    n: tuple[int, ...]


def _curve(doc: dict) -> dict[float, float]:
    out = {}
    for point in doc.get("curve") or []:
        it, value = point[0], point[1]
        if isinstance(value, (int, float)) and math.isfinite(value):
            out[it] = float(value)
    return out


def curve_differences(res: Results, reference: str) -> list[CurveBand]:
    """One band per row (other than ``reference``, in protocol order) whose curves share an
    iteration with the reference's curve of the same seed; the others are left out."""
    ref_row = next((r for r in res.proto.rows if r.name == reference), None)
    if ref_row is None:
        return []
    ref = {seed: _curve(doc) for seed, doc in res.row_runs(ref_row).items()}
    out = []
    for row in res.proto.rows:
        if row.name == reference or row.skip:
            continue
        per_it: dict[float, list[float]] = {}
        seeds = set()
        for seed, doc in res.row_runs(row).items():
            base = ref.get(seed)
            if not base:
                continue
            for it, value in _curve(doc).items():
                if it in base:
                    per_it.setdefault(it, []).append(value - base[it])
                    seeds.add(seed)
        if not per_it:
            continue
        its = sorted(per_it)
        out.append(
            CurveBand(
                row.name,
                res.proto.label(row.name),
                tuple(sorted(seeds)),
                tuple(its),
                tuple(mean(per_it[i]) for i in its),
                tuple(min(per_it[i]) for i in its),
                tuple(max(per_it[i]) for i in its),
                tuple(len(per_it[i]) for i in its),
            )
        )
    return out


# ---------------------------------------------------------------- drawing helpers


def _panel_width(ncols: int) -> float:
    return (WIDTH - LEFT - RIGHT - GAP_X * (ncols - 1)) / ncols


@dataclass(frozen=True)
class _Grid:
    """Rows of panels under a figure header: each panel is a header (title lines), a plot box
    and a footer line."""

    top: int  # where the first row starts
    head: int  # title lines above each box
    box: int  # the plot box's height
    foot: int  # the line under the box
    gap: int = 14

    @property
    def row_height(self) -> int:
        return self.head + self.box + self.foot + self.gap

    def height(self, rows: int) -> int:
        return self.top + rows * self.row_height + 4


CLAIM_GRID = _Grid(top=78, head=56, box=150, foot=22)
CURVE_GRID = _Grid(top=68, head=40, box=130, foot=24)


def grid_height(kind: str, rows: int) -> int:
    """Height (px) of a figure with ``rows`` rows of panels; ``kind`` is ``claims`` or
    ``curves``. Every figure is :data:`WIDTH` px wide."""
    grid = {"claims": CLAIM_GRID, "curves": CURVE_GRID}[kind]
    return grid.height(rows)


def _y_range(values: Sequence[float], min_span: float = 0.02) -> tuple[float, float]:
    """A range around ``values`` (zero included by the caller), padded by 10 %, at least
    ``min_span`` wide."""
    lo, hi = min(values), max(values)
    if hi - lo < min_span:
        mid = (hi + lo) / 2
        lo, hi = mid - min_span / 2, mid + min_span / 2
    pad = 0.1 * (hi - lo)
    return lo - pad, hi + pad


def _tick_label(t: float, step: float) -> str:
    if abs(t) < step * 1e-6:
        return "0"
    digits = max(0, math.ceil(-math.log10(step) - 1e-9))
    if abs(round(step, digits) - step) > step * 1e-6:
        digits += 1
    return f"{t:+.{digits}f}"


def _iter_label(t: float, top: float) -> str:
    if top >= 10000:
        return f"{t / 1000:g}k"
    return f"{t:g}"


class _Box:
    """A panel's plot box: maps values to pixels, clipping to the box."""

    def __init__(self, x0: float, y0: float, x1: float, y1: float, lo: float, hi: float) -> None:
        self.x0, self.y0, self.x1, self.y1, self.lo, self.hi = x0, y0, x1, y1, lo, hi

    def py(self, v: float) -> float:
        v = min(max(v, self.lo), self.hi)
        return self.y1 - (v - self.lo) / (self.hi - self.lo) * (self.y1 - self.y0)

    def inside(self, v: float) -> bool:
        return self.lo <= v <= self.hi

    def frame(self, draw: ImageDraw.ImageDraw, ticks: Sequence[float]) -> None:
        for t in ticks:
            draw.line([(self.x0, self.py(t)), (self.x1, self.py(t))], fill=GRID_COLOUR)
        if self.inside(0.0):
            draw.line([(self.x0, self.py(0.0)), (self.x1, self.py(0.0))], fill=ZERO_COLOUR)
        draw.rectangle([self.x0, self.y0, self.x1, self.y1], outline=(150, 150, 150))


def _y_ticks(draw, box: _Box, ticks: Sequence[float], f) -> None:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    for t in ticks:
        draw.text((box.x0 - 6, box.py(t)), _tick_label(t, step), fill="black", font=f, anchor="rm")


def _circle(draw, x: float, y: float, r: float, fill, outline=None) -> None:
    draw.ellipse([x - r, y - r, x + r, y + r], fill=fill, outline=outline)


def _diamond(draw, x: float, y: float, r: float, fill) -> None:
    draw.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=fill, outline=(120, 50, 0))


def _arrow(draw, x: float, y: float, up: bool, colour) -> None:
    d = -1 if up else 1
    draw.polygon([(x - 6, y - 7 * d), (x + 6, y - 7 * d), (x, y)], fill=colour)


def _legend(draw, items: Sequence[tuple[str, Callable[[float, float], None]]], y: float, f):
    """Marker-and-label pairs in one line, centred."""
    widths = [28 + text_width(label, f) for label, _ in items]
    x = (WIDTH - sum(widths) - 24 * (len(items) - 1)) / 2
    for (label, marker), w in zip(items, widths, strict=True):
        marker(x + 10, y)
        draw.text((x + 24, y), label, fill="black", font=f, anchor="lm")
        x += w + 24


# ---------------------------------------------------------------- 1. claim panels


def draw_claim_panels(
    res: Results,
    claims: Sequence[ReportClaim],
    paper_diffs: Sequence[float | None] | None,
    path: str | Path,
) -> Path | None:
    """Small multiples, one panel per claim (see the module docstring); None when no claim has
    results on both rows."""
    points = claim_points(res, claims, paper_diffs)
    if not points:
        return None
    metrics: list[str] = []
    for p in points:
        if p.metric not in metrics:
            metrics.append(p.metric)
    groups = [[p for p in points if p.metric == m] for m in metrics]
    ncols = MAX_COLS
    rows = sum(math.ceil(len(g) / ncols) for g in groups)
    grid = CLAIM_GRID
    img = Image.new("RGB", (WIDTH, grid.height(rows)), "white")
    draw = ImageDraw.Draw(img)
    f_title, f_head, f_small, f_tick = font(19), font(15), font(12), font(13)
    sets = ", ".join(res.sets)
    draw.text(
        (WIDTH / 2, 10),
        fit_text(
            f"Claims: paired difference a - b per seed, mean over {sets}", f_title, WIDTH - 20
        ),
        fill="black",
        font=f_title,
        anchor="mt",
    )
    legend = [
        ("one seed", lambda x, y: _circle(draw, x, y, 5, SEED_COLOUR, MEAN_COLOUR)),
        ("mean, 95 % t-interval", lambda x, y: _mean_marker(draw, x, y - 9, y + 9)),
        ("paper", lambda x, y: _diamond(draw, x, y, 7, PAPER_COLOUR)),
        ("zero", lambda x, y: draw.line([(x - 10, y), (x + 10, y)], fill=ZERO_COLOUR)),
    ]
    if all(p.paper is None for p in points):
        del legend[2]  # no paper marker drawn
    _legend(draw, legend, 50, f_tick)
    pw = _panel_width(ncols)
    grid_row = 0
    for metric, group in zip(metrics, groups, strict=True):
        lo, hi = _y_range(_claim_values(group))
        ticks = nice_ticks(lo, hi, 6)
        for start in range(0, len(group), ncols):
            top = grid.top + grid_row * grid.row_height
            y0, y1 = top + grid.head, top + grid.head + grid.box
            for col, p in enumerate(group[start : start + ncols]):
                x0 = LEFT + col * (pw + GAP_X)
                box = _Box(x0, y0, x0 + pw, y1, lo, hi)
                _claim_panel(draw, box, p, (f_head, f_small, f_tick))
                if col == 0:
                    _y_ticks(draw, box, ticks, f_small)
            axis = fit_text(METRIC_AXIS.get(metric, f"a - b, {metric}"), f_tick, grid.box)
            vertical_text(img, axis, f_tick, (16, (y0 + y1) / 2))
            grid_row += 1
    return _save(img, path)


def _claim_values(points: Sequence[ClaimPoints]) -> list[float]:
    """The values the shared y axis must show (see the module docstring)."""
    vals = [0.0]
    for p in points:
        vals += [*p.values, p.mean]
        if p.paper is not None:
            vals.append(p.paper)
        if p.ci is not None and p.n >= 3:
            vals += list(p.ci)
    return vals


def _mean_marker(draw, x: float, top: float, bottom: float) -> None:
    draw.line([(x, top), (x, bottom)], fill=MEAN_COLOUR, width=3)
    for y in (top, bottom):
        draw.line([(x - 6, y), (x + 6, y)], fill=MEAN_COLOUR, width=2)
    _circle(draw, x, (top + bottom) / 2, 5, MEAN_COLOUR)


def _claim_panel(draw, box: _Box, p: ClaimPoints, fonts) -> None:
    f_head, f_small, f_tick = fonts
    w = box.x1 - box.x0
    draw.text((box.x0, box.y0 - 54), fit_text(p.title, f_head, w), fill="black", font=f_head)
    for i, line in enumerate(wrap_text(p.text, f_small, w, 2)):
        draw.text((box.x0, box.y0 - 34 + 15 * i), line, fill=TEXT_GREY, font=f_small)
    box.frame(draw, nice_ticks(box.lo, box.hi, 6))
    x_seeds, x_mean, x_paper = box.x0 + 0.27 * w, box.x0 + 0.55 * w, box.x0 + 0.8 * w
    spread = min(9.0, 0.22 * w / max(p.n - 1, 1))
    for i, v in enumerate(sorted(p.values)):
        x = x_seeds + (i - (p.n - 1) / 2) * spread
        _circle(draw, x, box.py(v), 4.5, SEED_COLOUR, MEAN_COLOUR)
    if p.ci is not None:
        lo, hi = p.ci
        draw.line([(x_mean, box.py(lo)), (x_mean, box.py(hi))], fill=MEAN_COLOUR, width=3)
        for end, up in ((hi, True), (lo, False)):
            if box.inside(end):
                y = box.py(end)
                draw.line([(x_mean - 6, y), (x_mean + 6, y)], fill=MEAN_COLOUR, width=2)
            else:
                _arrow(draw, x_mean, box.y0 if up else box.y1, up, MEAN_COLOUR)
    _circle(draw, x_mean, box.py(p.mean), 5.5, MEAN_COLOUR)
    if p.paper is not None:
        _diamond(draw, x_paper, box.py(p.paper), 7, PAPER_COLOUR)
    seeds = f"{p.n} seed" + ("s" if p.n != 1 else "")
    draw.text(
        ((box.x0 + box.x1) / 2, box.y1 + 5),
        fit_text(f"mean {p.mean:+.3f} dB, {seeds}", f_tick, w),
        fill="black",
        font=f_tick,
        anchor="mt",
    )


# ---------------------------------------------------------------- 2. curve differences


def draw_curve_differences(res: Results, reference: str, path: str | Path) -> Path | None:
    """Small multiples, one panel per row: its validation curve minus ``reference``'s (see the
    module docstring); None when no row shares iterations and seeds with the reference."""
    bands = curve_differences(res, reference)
    if not bands:
        return None
    ncols = MAX_COLS
    rows = math.ceil(len(bands) / ncols)
    grid = CURVE_GRID
    img = Image.new("RGB", (WIDTH, grid.height(rows)), "white")
    draw = ImageDraw.Draw(img)
    f_title, f_head, f_small, f_tick = font(19), font(15), font(12), font(13)
    ref_label = res.proto.label(reference)
    draw.text(
        (WIDTH / 2, 10),
        fit_text(f"Validation Y-PSNR minus {ref_label}'s, paired by seed", f_title, WIDTH - 20),
        fill="black",
        font=f_title,
        anchor="mt",
    )
    _legend(
        draw,
        [
            ("mean over seeds", lambda x, y: draw.line([(x - 10, y), (x + 10, y)], MEAN_COLOUR, 3)),
            (
                "min to max over seeds",
                lambda x, y: draw.rectangle([x - 10, y - 6, x + 10, y + 6], BAND_COLOUR),
            ),
            ("zero", lambda x, y: draw.line([(x - 10, y), (x + 10, y)], fill=ZERO_COLOUR)),
        ],
        45,
        f_tick,
    )
    x_hi = max(max(b.iterations) for b in bands) or 1.0
    lo, hi = _y_range(_settled_values(bands, x_hi))
    ticks = nice_ticks(lo, hi, 6)
    x_ticks = nice_ticks(0.0, x_hi, 3)
    pw = _panel_width(ncols)
    for i, b in enumerate(bands):
        r, col = divmod(i, ncols)
        top = grid.top + r * grid.row_height
        x0 = LEFT + col * (pw + GAP_X)
        box = _Box(x0, top + grid.head, x0 + pw, top + grid.head + grid.box, lo, hi)

        def px(it: float, box: _Box = box) -> float:
            return box.x0 + it / x_hi * (box.x1 - box.x0)

        draw.text((x0, top), fit_text(b.label, f_head, pw), fill="black", font=f_head)
        seeds = f"{len(b.seeds)} seed" + ("s" if len(b.seeds) != 1 else "")
        end = f"{seeds}; at {_iter_label(b.iterations[-1], x_hi)}: {b.mean[-1]:+.3f} dB"
        draw.text((x0, top + 20), fit_text(end, f_small, pw), fill=TEXT_GREY, font=f_small)
        for t in ticks:
            draw.line([(box.x0, box.py(t)), (box.x1, box.py(t))], fill=GRID_COLOUR)
        if len(b.iterations) > 1 and max(b.n) > 1:
            upper = [(px(it), box.py(v)) for it, v in zip(b.iterations, b.hi, strict=True)]
            lower = [(px(it), box.py(v)) for it, v in zip(b.iterations, b.lo, strict=True)]
            draw.polygon(upper + lower[::-1], fill=BAND_COLOUR)
        box.frame(draw, [])
        pts = [(px(it), box.py(v)) for it, v in zip(b.iterations, b.mean, strict=True)]
        if len(pts) > 1:
            draw.line(pts, fill=MEAN_COLOUR, width=2, joint="curve")
        else:
            _circle(draw, *pts[0], 3, MEAN_COLOUR)
        for t in x_ticks:
            # the end ticks are aligned inwards, so neighbouring panels' labels never touch
            anchor = "lt" if t <= 0 else ("rt" if px(t) > box.x1 - 20 else "mt")
            draw.line([(px(t), box.y1), (px(t), box.y1 + 4)], fill=(150, 150, 150))
            draw.text(
                (px(t), box.y1 + 6), _iter_label(t, x_hi), fill="black", font=f_small, anchor=anchor
            )
        if col == 0:
            _y_ticks(draw, box, ticks, f_small)
            vertical_text(img, "dB", f_tick, (22, (box.y0 + box.y1) / 2))
    return _save(img, path)


def _settled_values(bands: Sequence[CurveBand], x_hi: float) -> list[float]:
    """The values the shared y axis of the curve panels shows: zero and the means and bands
    over the second half of training (``iteration >= x_hi / 2``; a row without such points
    contributes its last one). Early differences are large and would flatten the end."""
    vals = [0.0]
    for b in bands:
        idx = [i for i, it in enumerate(b.iterations) if it >= x_hi / 2] or [len(b.iterations) - 1]
        vals += [v for i in idx for v in (b.lo[i], b.hi[i], b.mean[i])]
    return vals


def _save(img: Image.Image, path: str | Path) -> Path:
    path = Path(path)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    atomic_write_bytes(path, buf.getvalue())
    return path


# ---------------------------------------------------------------- 3. measured qualitative crops


class CropChoice(NamedTuple):
    """A crop where two models differ most: ``(set, image, x, y, w, h)`` in modcropped HR
    pixels, ``diff`` the crop's Y-PSNR of the first model minus the second's (dB), and
    ``mse_gap`` = MSE_a - MSE_b on the crop (Y, 0..255 squared), whose absolute value ranked it."""

    set: str
    image: str
    x: int
    y: int
    w: int
    h: int
    diff: float
    mse_gap: float


def choose_crops(
    models: Sequence[tuple[str, str | Path | nn.Module]],
    data_root: str | Path,
    scale: int,
    *,
    sets: Sequence[str] = ("Set5", "Set14"),
    max_images: int = 20,
    size: int = 64,
    stride: int | None = None,
    k: int = 3,
    device: str = "cpu",
) -> list[CropChoice]:
    """The ``k`` crops, on ``k`` different images, where the first two ``models`` differ most.

    ``models`` are ``(label, weights file or network)``; only the first two are measured.
    Each of the first ``max_images`` images of each set is super-resolved by both, from the
    evaluation's LR input (:class:`~facd.data.benchmark.BenchmarkSet`,
    :func:`facd.evaluate.super_resolve`); a ``size`` x ``size`` HR window moves in steps of
    ``stride`` (default ``size // 2``) inside the ``scale``-pixel border; each image keeps its
    window with the largest ``|MSE_a - MSE_b|`` on Y, and the ``k`` images whose windows have
    the largest are returned, largest first. Images smaller than a window are passed over.
    """
    import torch

    from facd.archs.io import load_model
    from facd.data.benchmark import BenchmarkSet
    from facd.evaluate import super_resolve
    from facd.infer.device import resolve_device

    if len(models) < 2:
        raise FacdError(f"choose_crops compares two models, got {len(models)}")
    if size < 1 or k < 1 or max_images < 1:
        raise FacdError(f"size, k and max_images must be >= 1, got {size}, {k}, {max_images}")
    step = stride or max(1, size // 2)
    dev = resolve_device(device)
    nets = []
    for _, ref in models[:2]:
        net = ref if isinstance(ref, torch.nn.Module) else load_model(str(ref), scale)[0]
        nets.append(net.to(dev).eval())

    def sr(net, lr: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(super_resolve(net, lr, scale, dev)[0].permute(1, 2, 0).cpu())

    found: list[CropChoice] = []
    for set_name in sets:
        bench = BenchmarkSet(data_root, set_name, scale)
        for index in range(min(len(bench), max_images)):
            item = bench[index]
            best = best_window(
                item.hr, sr(nets[0], item.lr), sr(nets[1], item.lr), size, step, scale
            )
            if best is None:
                continue
            x, y, mse_a, mse_b = best
            gap = mse_a - mse_b
            found.append(
                CropChoice(set_name, item.name, x, y, size, size, psnr_gap(mse_a, mse_b), gap)
            )
    found.sort(key=lambda c: -abs(c.mse_gap))
    return found[:k]


def _hr_path(data_root: str | Path, set_name: str, image: str, scale: int) -> Path:
    from facd.data.benchmark import BenchmarkSet

    bench = BenchmarkSet(data_root, set_name, scale)
    return next(p for p in bench.hr_paths if p.stem == image)


def _fmt_db(v: float) -> str:
    return f"{v:+.2f} dB" if math.isfinite(v) else ("+inf" if v > 0 else "-inf")


def draw_qualitative_measured(
    models: Sequence[tuple[str, str | Path]],
    data_root: str | Path,
    scale: int,
    path: str | Path,
    *,
    sets: Sequence[str] = ("Set5", "Set14"),
    max_images: int = 20,
    size: int = 64,
    stride: int | None = None,
    k: int = 3,
    panel_width: int | None = None,
    device: str = "cpu",
    about: str = "",
) -> tuple[Path | None, str]:
    """Crops chosen by :func:`choose_crops`, drawn by :func:`write_comparison` (HR, bicubic and
    every model, the PSNR under each panel measured on the crop; ``panel_width`` by default
    makes the figure about :data:`WIDTH` px wide); returns (figure, caption) or (None, why no
    crop was found). ``about`` follows the two models' names in the caption, e.g.
    ``" (seed 0 of each)"``."""
    step = stride or max(1, size // 2)
    if panel_width is None:
        columns = 3 + len(models)  # overview, HR, bicubic, the models
        panel_width = max(64, (WIDTH - 8) // columns - 8)
    crops = choose_crops(
        models,
        data_root,
        scale,
        sets=sets,
        max_images=max_images,
        size=size,
        stride=step,
        k=k,
        device=device,
    )
    where = " and ".join(sets) if len(sets) <= 2 else ", ".join(sets)
    if not crops:
        return None, f"no image of {where} holds a {size}x{size} window inside its border"
    images = [_hr_path(data_root, c.set, c.image, scale) for c in crops]
    boxes = [(c.x, c.y, c.w, c.h) for c in crops]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_comparison(
        images, boxes, models, scale, out, panel_width, device=device, psnr_region="crop"
    )
    a, b = models[0][0], models[1][0]
    measured = ", ".join(f"{c.set}/{c.image} {_fmt_db(c.diff)}" for c in crops)
    caption = (
        f"Crops chosen by measurement, not by hand: {a} and {b}{about} super-resolved up to "
        f"{max_images} images of each of {where} from the evaluation's LR input; a "
        f"{size}x{size} window moved in steps of {step} px inside the {scale}-pixel border; shown "
        f"are the {len(crops)} image{'s' if len(crops) != 1 else ''} whose best window has the "
        f"largest gap in mean squared error on Y between the two, |MSE({a}) − MSE({b})| (the "
        f"crops that weigh most in their PSNR difference). Crop Y-PSNR {a} − {b}: {measured}; "
        "the PSNR under each panel is measured on the crop."
    )
    _set_png_caption(out, caption)  # kept for a report written without redrawing
    return out, caption


# ---------------------------------------------------------------- 4. the report's section


def relative_link(target: Path, report: Path) -> str:
    """``target`` as a Markdown link from the folder of ``report`` (POSIX separators)."""
    import os

    return os.path.relpath(target, report.parent).replace(os.sep, "/")


def _qualitative_pair(res: Results) -> tuple[str, str] | None:
    """The first Y-PSNR claim whose two rows have results (e.g. FACD vs scratch)."""
    for c in res.proto.report.claims:
        a, b = c.rows
        if c.metric == "psnr_y" and res.has(a) and res.has(b):
            return a, b
    return None


def _pair_models(res: Results, pair: tuple[str, str]) -> tuple[list[tuple[str, str]], str]:
    """``(label, weights)`` of the two rows at their smallest common seed (else each row's
    smallest seed, named in the labels), and the caption's words about the seed."""
    runs = [res.row_runs(res.proto.row(name)) for name in pair]
    common = sorted(set(runs[0]) & set(runs[1]))
    out = []
    for name, by_seed in zip(pair, runs, strict=True):
        seed = common[0] if common else min(by_seed)
        label = res.proto.label(name) + ("" if common else f" (seed {seed})")
        out.append((label, str(by_seed[seed]["weights"])))
    return out, f" (seed {common[0]} of each)" if common else ""


#: The files of the report's figures in ``figures_dir``.
CLAIMS_PNG, CURVES_PNG, QUALITATIVE_PNG = (
    "claims.png",
    "curve-differences.png",
    "qualitative-measured.png",
)
#: The PNG text key under which a drawn qualitative figure keeps its caption (its measured
#: numbers), so that a report written without redrawing can still give it.
CAPTION_KEY = "Description"


def figure_section(
    res: Results,
    fig_dir: str | Path,
    report_path: str | Path,
    paper_diffs: Sequence[float | None] | None = None,
    *,
    qualitative: bool = True,
    pair: tuple[str, str] | None = None,
    sets: Sequence[str] | None = None,
    device: str = "cpu",
    draw: bool = True,
) -> list[str]:
    """The report's "Figures" section as markdown lines (empty when there is no figure).

    Writes ``claims.png``, ``curve-differences.png`` and (with ``qualitative``)
    ``qualitative-measured.png`` into ``fig_dir``, linked relative to ``report_path``.
    ``paper_diffs[i]`` is the paper's difference for ``res.proto.report.claims[i]`` (dB, or
    None). The crops compare ``pair`` (default: the first Y-PSNR claim with results on both
    rows) at their first common seed, searched in ``sets`` (default: Set5 and Set14 where the
    protocol evaluates them, else its first set).

    With ``draw=False`` nothing is drawn: the figures already in ``fig_dir`` (from an earlier
    report) are linked with their captions, so that a report written without redrawing keeps
    them. The qualitative figure's caption holds measured numbers: it is read from the PNG
    (:data:`CAPTION_KEY`), else from the report at ``report_path`` that linked it, else a
    caption without the numbers is given.
    """
    fig_dir, report_path = Path(fig_dir), Path(report_path)
    body: list[str] = []
    ref = res.proto.reference
    if draw:
        claims = draw_claim_panels(res, res.proto.report.claims, paper_diffs, fig_dir / CLAIMS_PNG)
        curves = draw_curve_differences(res, ref, fig_dir / CURVES_PNG)
    else:
        claims, curves = _existing(fig_dir / CLAIMS_PNG), _existing(fig_dir / CURVES_PNG)
    if claims is not None:
        body += _claims_lines(claims, report_path, ", ".join(res.sets))
    if curves is not None:
        body += _curves_lines(curves, report_path, res.proto.label(ref))
    if qualitative and draw:
        body += _qualitative_lines(res, fig_dir, report_path, pair, sets, device)
    elif qualitative:
        body += _existing_qualitative_lines(fig_dir / QUALITATIVE_PNG, report_path)
    return ["## Figures", "", *body] if body else []


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def _claims_lines(fig: Path, report_path: Path, sets_text: str) -> list[str]:
    return [
        f"![paired difference of each claim]({relative_link(fig, report_path)})",
        "",
        f"Each panel is one claim a − b of the reading, on the mean Y-PSNR over {sets_text} "
        "(claims on PSNR against the teacher's output have their own axis): dots are the "
        "differences of single seeds, paired by seed; the dark bar is their mean with its "
        "95 % Student-t interval (two or more seeds; an arrow marks an interval that runs "
        "off the axis); the orange diamond is the paper's difference; the black line is zero. "
        "Claims whose rows have no results are left out.",
        "",
    ]


def _curves_lines(fig: Path, report_path: Path, ref_label: str) -> list[str]:
    return [
        f"![validation curves minus the reference]({relative_link(fig, report_path)})",
        "",
        f"Validation Y-PSNR of each row minus that of {ref_label} at the same "
        "iteration, paired by seed: the line is the mean over seeds, the band spans the "
        "lowest to the highest seed (no band with one seed); the y axis is shared and fitted "
        "to the second half of training, so earlier points may sit on its edge.",
        "",
    ]


_QUALITATIVE_ALT = "crops where the two models differ most"


def _qualitative_figure_lines(fig: Path, report_path: Path, caption: str) -> list[str]:
    return [f"![{_QUALITATIVE_ALT}]({relative_link(fig, report_path)})", "", caption, ""]


def _existing_qualitative_lines(fig: Path, report_path: Path) -> list[str]:
    """The qualitative figure already on disk, with its caption (see :func:`figure_section`)."""
    if not fig.is_file():
        return []
    caption = (
        _png_caption(fig)
        or _previous_caption(report_path, relative_link(fig, report_path))
        or (
            "Crops chosen by measurement, not by hand, where the two compared models' outputs "
            "differ most (drawn by an earlier report, whose caption with the measured "
            "differences was not kept; redraw the figures to have it)."
        )
    )
    return _qualitative_figure_lines(fig, report_path, caption)


def _png_caption(path: Path) -> str:
    """The caption kept in a PNG's text chunks ('' when there is none or it cannot be read)."""
    try:
        with Image.open(path) as img:
            text = getattr(img, "text", {}) or {}
    except (OSError, ValueError):
        return ""
    return str(text.get(CAPTION_KEY, ""))


def _set_png_caption(path: Path, caption: str) -> None:
    """Keep ``caption`` in the PNG at ``path`` (an iTXt chunk, UTF-8)."""
    from PIL.PngImagePlugin import PngInfo

    with Image.open(path) as img:
        copy = img.copy()
    info = PngInfo()
    info.add_itxt(CAPTION_KEY, caption)
    buf = io.BytesIO()
    copy.save(buf, format="PNG", pnginfo=info, optimize=True)
    atomic_write_bytes(path, buf.getvalue())


def _previous_caption(report_path: Path, link: str) -> str:
    """The paragraph right after the line that linked ``link`` in the report at
    ``report_path`` ('' when the report or the link is not there)."""
    try:
        lines = report_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    for i, line in enumerate(lines):
        if line.startswith("![") and line.endswith(f"]({link})"):
            after = [x for x in lines[i + 1 :] if x.strip()][:1]
            if after and not after[0].startswith(("![", "#")):
                return after[0]
            return ""
    return ""


def _qualitative_lines(
    res: Results,
    fig_dir: Path,
    report_path: Path,
    pair: tuple[str, str] | None,
    sets: Sequence[str] | None,
    device: str,
) -> list[str]:
    pair = pair or _qualitative_pair(res)
    if pair is None:
        return []
    if sets is None:
        sets = [s for s in ("Set5", "Set14") if s in res.sets] or res.sets[:1]
    models, about = _pair_models(res, pair)
    try:
        fig, caption = draw_qualitative_measured(
            models,
            res.proto.eval.data_root,
            res.proto.scale,
            fig_dir / QUALITATIVE_PNG,
            sets=sets,
            device=device,
            about=about,
        )
    except Exception as exc:  # noqa: BLE001 - the report must still be written
        return [f"The qualitative figure was not made: {type(exc).__name__}: {exc}", ""]
    if fig is None:
        return [f"The qualitative figure was not made: {caption}.", ""]
    return _qualitative_figure_lines(fig, report_path, caption)
