"""A small line chart drawn with Pillow (no plotting library needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (0, 0, 0),
    (90, 90, 200),
    (200, 90, 90),
    (90, 160, 90),
]


@dataclass
class Series:
    label: str
    points: list[tuple[float, float]]
    colour: tuple[int, int, int] = (0, 0, 0)
    dashed: bool = False
    width: int = 2


@dataclass
class Chart:
    title: str
    xlabel: str
    ylabel: str
    series: list[Series] = field(default_factory=list)
    hlines: list[tuple[str, float, tuple[int, int, int]]] = field(default_factory=list)
    y_range: tuple[float, float] | None = None


Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def font(size: int) -> Font:
    """Pillow's default font at ``size`` px. It has Latin-1 glyphs only: text drawn in figures
    uses ASCII and ``±`` (a minus is ``-``, markers are drawn as shapes)."""
    return _font(size)


def text_width(text: str, f: Font) -> float:
    return float(f.getlength(text)) if hasattr(f, "getlength") else float(f.getbbox(text)[2])


def fit_text(text: str, f: Font, width: float) -> str:
    """``text``, cut with ``...`` to fit ``width`` pixels."""
    if text_width(text, f) <= width:
        return text
    while text and text_width(text + "...", f) > width:
        text = text[:-1]
    return text.rstrip() + "..."


def wrap_text(text: str, f: Font, width: float, max_lines: int) -> list[str]:
    """Word-wrap ``text`` to ``width`` pixels, at most ``max_lines`` lines (the last one cut
    with ``...`` when the text is longer)."""
    lines: list[str] = []
    words = text.split()
    while words and len(lines) < max_lines:
        line = words.pop(0)
        while words and text_width(line + " " + words[0], f) <= width:
            line += " " + words.pop(0)
        lines.append(line)
    if words and lines:
        lines[-1] = fit_text(lines[-1] + " " + " ".join(words), f, width)
    return [fit_text(line, f, width) for line in lines]


def vertical_text(
    img: Image.Image, text: str, f: Font, centre: tuple[float, float], colour=(0, 0, 0)
) -> None:
    """``text`` rotated by 90 degrees (read bottom to top), centred on ``centre``."""
    w = int(text_width(text, f)) + 4
    h = int(f.getbbox("Hg")[3]) + 4
    label = Image.new("RGB", (w, h), "white")
    ImageDraw.Draw(label).text((w / 2, h / 2), text, fill=colour, font=f, anchor="mm")
    rotated = label.rotate(90, expand=True)
    img.paste(rotated, (int(centre[0] - rotated.width / 2), int(centre[1] - rotated.height / 2)))


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    ticks = []
    t = first
    while t <= hi + 1e-9:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _dashed(
    draw: ImageDraw.ImageDraw, pts: Sequence[tuple[float, float]], colour, width: int
) -> None:
    dash, gap = 8.0, 5.0
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        length = math.hypot(x1 - x0, y1 - y0)
        pos = 0.0
        while pos < length:
            end = min(pos + dash, length)
            a, b = pos / length, end / length
            draw.line(
                [
                    (x0 + (x1 - x0) * a, y0 + (y1 - y0) * a),
                    (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b),
                ],
                fill=colour,
                width=width,
            )
            pos = end + gap


def draw_chart(chart: Chart, path: str | Path, size: tuple[int, int] = (1000, 600)) -> Path:
    """Render ``chart`` as a PNG with a legend to the right of the plot area."""
    w, h = size
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font, small, big = _font(15), _font(13), _font(18)
    left, top, right, bottom = 80, 50, w - 230, h - 60
    xs = [x for s in chart.series for x, _ in s.points] or [0.0, 1.0]
    ys = [y for s in chart.series for _, y in s.points] + [v for _, v, _ in chart.hlines]
    ys = ys or [0.0, 1.0]
    x_lo, x_hi = 0.0, max(xs)
    y_lo, y_hi = chart.y_range or (min(ys), max(ys))
    pad = 0.05 * (y_hi - y_lo or 1.0)
    y_lo, y_hi = y_lo - pad, y_hi + pad

    def to_px(x: float, y: float) -> tuple[float, float]:
        px = left + (x - x_lo) / ((x_hi - x_lo) or 1.0) * (right - left)
        yc = min(max(y, y_lo), y_hi)
        py = bottom - (yc - y_lo) / ((y_hi - y_lo) or 1.0) * (bottom - top)
        return px, py

    for t in nice_ticks(y_lo, y_hi):
        _, py = to_px(x_lo, t)
        draw.line([(left, py), (right, py)], fill=(230, 230, 230))
        draw.text((left - 8, py), f"{t:g}", fill="black", font=small, anchor="rm")
    for t in nice_ticks(x_lo, x_hi):
        px, _ = to_px(t, y_lo)
        draw.line([(px, top), (px, bottom)], fill=(240, 240, 240))
        draw.text((px, bottom + 6), f"{t:g}", fill="black", font=small, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline="black")
    for label, value, colour in chart.hlines:
        _, py = to_px(x_lo, value)
        _dashed(draw, [(left, py), (right, py)], colour, 1)
        draw.text((left + 6, py - 3), label, fill=colour, font=small, anchor="lb")
    for s in chart.series:
        pts = [to_px(x, y) for x, y in sorted(s.points)]
        if len(pts) >= 2:
            if s.dashed:
                _dashed(draw, pts, s.colour, s.width)
            else:
                draw.line(pts, fill=s.colour, width=s.width, joint="curve")
        for px, py in pts:
            draw.ellipse([px - 2.5, py - 2.5, px + 2.5, py + 2.5], fill=s.colour)
    draw.text(((left + right) / 2, 16), chart.title, fill="black", font=big, anchor="mt")
    draw.text(((left + right) / 2, h - 22), chart.xlabel, fill="black", font=font, anchor="mm")
    label_img = Image.new("RGB", (bottom - top, 24), "white")
    ImageDraw.Draw(label_img).text(
        ((bottom - top) / 2, 12), chart.ylabel, fill="black", font=font, anchor="mm"
    )
    img.paste(label_img.rotate(90, expand=True), (14, top))
    ly = top
    for s in chart.series:
        x0 = right + 20
        if s.dashed:
            _dashed(draw, [(x0, ly + 8), (x0 + 30, ly + 8)], s.colour, s.width)
        else:
            draw.line([(x0, ly + 8), (x0 + 30, ly + 8)], fill=s.colour, width=s.width)
        draw.text((x0 + 38, ly + 8), s.label, fill="black", font=small, anchor="lm")
        ly += 22
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, optimize=True)
    return path


# ---------------------------------------------------------------- qualitative comparison


def write_comparison(
    images: Sequence[Path],
    crops: Sequence[tuple[int, int, int, int]],
    models: Sequence[tuple[str, str | Path]],
    scale: int,
    out: Path,
    panel_width: int = 256,
    device: str = "auto",
    psnr_region: str = "image",
) -> str:
    """Side-by-side crops of ``models`` (``(label, weights file)``) on the HR ``images`` with
    :func:`facd.compare.build_comparison`, written to ``out``; returns the Y-PSNR table as
    ``facd compare`` prints it: on the whole image (shave = scale) or, with
    ``psnr_region="crop"``, on the crop. Whole images, no tiling."""
    import numpy as np

    import facd
    from facd.compare import build_comparison
    from facd.data.image_io import read_image_raw, write_image

    loaded = [(label, facd.load(str(ref), device=device, tile=0)) for label, ref in models]
    hr = [(Path(p).stem, read_image_raw(p)) for p in images]
    fig = build_comparison(
        hr, list(crops), loaded, scale, panel_width=panel_width, psnr_region=psnr_region
    )
    write_image(out, np.asarray(fig.image))
    shave = scale if fig.psnr_region == "image" else 0
    return f"Y-PSNR (dB) on the {fig.psnr_region}, shave {shave}:\n{fig.table()}\n"
