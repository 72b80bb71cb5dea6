"""Side-by-side crops of several models on the same images (the paper's qualitative figures).

Each row is one image: an overview of the whole image with the crop marked, then the crop of
HR, of MATLAB bicubic, and of each model's output. The given image is the HR; the LR input is
``bicubic_downsample(HR, scale)`` (MATLAB ``imresize``, as in the benchmarks) and the HR is
modcropped to a multiple of the scale. Under each crop: the panel's name and its Y-PSNR with
``shave = scale``, measured on the **whole image** by default (as in the papers' tables; the
crop is only what is shown) or on the crop with ``psnr_region="crop"``.

With ``hr_is_input`` the given image is the model input itself (no ground truth, no PSNR):
the first panel shows the input crop enlarged with nearest neighbours.

Single-channel images stay single-channel, so PSNR follows ``facd.metrics``' grey convention,
like ``facd eval``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from facd.errors import DataError
from facd.infer.tiling import NonFiniteOutputError

__all__ = [
    "ComparisonFigure",
    "PanelInfo",
    "RowInfo",
    "build_comparison",
    "parse_crop",
    "render_rows",
]

Crop = tuple[int, int, int, int]  # x, y, w, h
Upscale = Callable[[np.ndarray], np.ndarray]

PAD = 8
TEXT_GAP = 4
CROP_COLOUR = (230, 30, 30)


@dataclass(frozen=True)
class PanelInfo:
    """One cell of the figure: its title, PSNR (None without ground truth), the two text lines
    drawn under it, and its image box ``(x0, y0, x1, y1)`` in figure pixels."""

    label: str
    psnr: float | None
    text: tuple[str, str]
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class RowInfo:
    name: str
    crop: Crop
    panels: tuple[PanelInfo, ...]


@dataclass(frozen=True)
class ComparisonFigure:
    image: Image.Image
    rows: tuple[RowInfo, ...]
    psnr_region: str

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    def table(self) -> str:
        """PSNR table (rows = images, columns = panels) as plain text."""
        if not self.rows:
            return ""
        labels = [p.label for p in self.rows[0].panels if p.psnr is not None]
        width = max(8, *(len(x) for x in labels))
        lines = ["image".ljust(16) + "".join(x.rjust(width + 2) for x in labels)]
        for row in self.rows:
            vals = [p.psnr for p in row.panels if p.psnr is not None]
            lines.append(row.name[:16].ljust(16) + "".join(_fmt(v).rjust(width + 2) for v in vals))
        return "\n".join(lines)


def _fmt(psnr: float | None) -> str:
    if psnr is None:
        return "-"
    return "inf" if math.isinf(psnr) else f"{psnr:.2f}"


def parse_crop(text: str) -> Crop:
    """``"x,y,w,h"`` -> ints, with a one-line error otherwise."""
    parts = text.replace(" ", "").split(",")
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise DataError(f"crop must be x,y,w,h (four integers), got {text!r}") from None
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise DataError(f"crop {text!r}: x and y must be >= 0, w and h >= 1")
    return x, y, w, h


def _check_crop(crop: Crop, height: int, width: int, name: str) -> None:
    x, y, w, h = crop
    if x + w > width or y + h > height:
        raise DataError(
            f"{name}: crop x={x},y={y},w={w},h={h} leaves the {width}x{height} image "
            "(after cropping it to a multiple of the scale)"
        )


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img


def _cut(img: np.ndarray, crop: Crop, factor: int = 1) -> np.ndarray:
    x, y, w, h = (v * factor for v in crop)
    return img[y : y + h, x : x + w]


def _psnr(sr: np.ndarray, hr: np.ndarray, scale: int, crop: Crop | None) -> float:
    from facd.metrics import psnr_y

    if crop is not None:
        sr, hr = _cut(sr, crop), _cut(hr, crop)
    return psnr_y(sr, hr, shave=scale if crop is None else 0)


def render_rows(
    rows: Sequence[tuple[str, np.ndarray, Crop, list[tuple[str, np.ndarray, float | None]]]],
    *,
    panel_width: int = 256,
    overview: bool = True,
    second_line: Callable[[str, float | None], str] | None = None,
) -> tuple[Image.Image, tuple[RowInfo, ...]]:
    """Draw rows of ``(name, full_image, crop, [(label, crop_pixels, psnr), ...])``.

    Crops are enlarged (nearest neighbour) to ``panel_width``; all rows share one width.
    """
    font = ImageFont.load_default()
    line_h = int(font.getbbox("Hg")[3]) + 2
    label_h = 2 * line_h + TEXT_GAP
    ncols = max(len(r[3]) for r in rows) + (1 if overview else 0)
    fig_w = PAD + ncols * (panel_width + PAD)
    heights: list[int] = []
    for _, _, (_, _, w, h), _ in rows:
        heights.append(max(1, int(round(panel_width * h / w))))
    fig_h = PAD + sum(ph + label_h + PAD for ph in heights)
    fig = Image.new("RGB", (fig_w, fig_h), "white")
    draw = ImageDraw.Draw(fig)
    text2 = second_line or (lambda _label, p: f"{_fmt(p)} dB" if p is not None else "")
    infos = []
    y = PAD
    for (name, full, crop, panels), ph in zip(rows, heights, strict=True):
        x = PAD
        cells: list[PanelInfo] = []
        if overview:
            box = _draw_overview(fig, draw, full, crop, (x, y, panel_width, ph))
            lines = (name, f"crop {crop[0]},{crop[1]} {crop[2]}x{crop[3]}")
            _draw_text(draw, font, lines, (x, y + ph + TEXT_GAP), line_h)
            cells.append(PanelInfo("overview", None, lines, box))
            x += panel_width + PAD
        for label, pixels, psnr in panels:
            tile = Image.fromarray(_rgb(pixels)).resize((panel_width, ph), Image.Resampling.NEAREST)
            fig.paste(tile, (x, y))
            lines = (label, text2(label, psnr))
            _draw_text(draw, font, lines, (x, y + ph + TEXT_GAP), line_h)
            cells.append(PanelInfo(label, psnr, lines, (x, y, x + panel_width, y + ph)))
            x += panel_width + PAD
        infos.append(RowInfo(name, crop, tuple(cells)))
        y += ph + label_h + PAD
    return fig, tuple(infos)


def _draw_overview(fig, draw, full: np.ndarray, crop: Crop, cell) -> tuple[int, int, int, int]:
    """The whole image fitted into the cell, centred, with the crop outlined."""
    cx, cy, cw, ch = cell
    h, w = full.shape[:2]
    f = min(cw / w, ch / h)
    tw, th = max(1, round(w * f)), max(1, round(h * f))
    ox, oy = cx + (cw - tw) // 2, cy + (ch - th) // 2
    thumb = Image.fromarray(_rgb(full)).resize((tw, th), Image.Resampling.LANCZOS)
    fig.paste(thumb, (ox, oy))
    x, y, w_, h_ = crop
    rect = (ox + x * f, oy + y * f, ox + (x + w_) * f - 1, oy + (y + h_) * f - 1)
    draw.rectangle(rect, outline=CROP_COLOUR, width=2)
    return ox, oy, ox + tw, oy + th


def _draw_text(draw, font, lines: tuple[str, str], at: tuple[int, int], line_h: int) -> None:
    x, y = at
    for i, text in enumerate(lines):
        if text:
            draw.text((x, y + i * line_h), text, fill="black", font=font)


def build_comparison(
    images: Sequence[tuple[str, np.ndarray]],
    crops: Sequence[Crop],
    models: Sequence[tuple[str, Upscale]],
    scale: int,
    *,
    hr_is_input: bool = False,
    psnr_region: str = "image",
    panel_width: int = 256,
    overview: bool = True,
) -> ComparisonFigure:
    """Build the figure for ``images`` (``(name, uint8 array)``), one crop per image.

    ``models`` are ``(label, upscale)`` with ``upscale(lr_uint8) -> sr_uint8`` (an
    :class:`facd.infer.api.Upscaler` works). Crops are in the given image's pixels.
    """
    from facd.data.imresize import bicubic_downsample, bicubic_upsample, modcrop

    if psnr_region not in ("image", "crop"):
        raise DataError(f"psnr_region must be 'image' or 'crop', got {psnr_region!r}")
    if len(crops) != len(images):
        raise DataError(f"got {len(images)} image(s) but {len(crops)} crop(s); give one per image")
    if not images:
        raise DataError("no images to compare")
    rows = []
    for (name, img), crop in zip(images, crops, strict=True):
        if hr_is_input:
            lr, hr = img, None
            _check_crop(crop, lr.shape[0], lr.shape[1], name)
            panels: list[tuple[str, np.ndarray, float | None]] = [("input", _cut(lr, crop), None)]
            factor = scale
        else:
            hr = modcrop(img, scale)
            _check_crop(crop, hr.shape[0], hr.shape[1], name)
            lr = bicubic_downsample(hr, scale)
            panels = [("HR", _cut(hr, crop), None)]
            factor = 1
        outputs = [("Bicubic", bicubic_upsample(lr, scale))]
        for label, fn in models:
            try:
                outputs.append((label, fn(lr)))
            except NonFiniteOutputError:
                raise NonFiniteOutputError(
                    f"model {label} produced NaN or infinite values on image {name}; its weights "
                    "are broken (e.g. saved from a diverged training run)"
                ) from None
        for label, sr in outputs:
            if sr.shape[:2] != (lr.shape[0] * scale, lr.shape[1] * scale):
                raise DataError(f"{label}: output {sr.shape[:2]} is not x{scale} of {lr.shape[:2]}")
            psnr = None
            if hr is not None:
                psnr = _psnr(sr, hr, scale, crop if psnr_region == "crop" else None)
            panels.append((label, _cut(sr, crop, factor), psnr))
        rows.append((name, img, crop, panels))

    def second(label: str, psnr: float | None) -> str:
        if label == "HR":
            shave = scale if psnr_region == "image" else 0  # a crop is measured unshaved
            return f"Y-PSNR ({psnr_region}, shave {shave})"
        return "" if psnr is None else f"{_fmt(psnr)} dB"

    fig, infos = render_rows(rows, panel_width=panel_width, overview=overview, second_line=second)
    return ComparisonFigure(fig, infos, psnr_region)
