"""Drawing helpers on Pillow (no plotting library needed): fonts and text fitting, axis ticks,
and the qualitative comparison figure of the reports."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

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
