"""Side-by-side crops of several models on the same images (the paper's qualitative figures).

Each row is one image: an overview of the whole image with the crop marked, then the crop of
HR, of MATLAB bicubic, and of each model's output. The given image is the HR; the LR input is
``bicubic_downsample(HR, scale)`` (MATLAB ``imresize``, as in the benchmarks) and the HR is
modcropped to a multiple of the scale. Under each crop: the panel's name and its Y-PSNR with
``shave = scale``, measured on the **whole image** by default (as in the papers' tables; the
crop is only what is shown) or on the crop with ``psnr_region="crop"``.

With ``hr_is_input`` the given image is the model input itself (no ground truth, no PSNR):
the first panel shows the input crop enlarged with nearest neighbours.

A crop given as None is chosen where two models differ most (:func:`choose_crop`), as the
report's qualitative figures are (:mod:`facd.reproduce.figures`): a square window slides over
the image in steps of half its side, inside the ``shave = scale`` border, and the window with
the largest ``|MSE_a - MSE_b|`` on Y against the HR (the metrics' plane) is kept, ``a`` and
``b`` being the first two models (or the only model and bicubic). An absolute error gap is
ranked, not a PSNR gap: a PSNR gap is largest on flat crops where both models are nearly exact.
Without ground truth (``hr_is_input``) the window where the two outputs differ most,
``mean (a - b)^2`` on Y, is kept.

Single-channel images stay single-channel, so PSNR follows ``facd.metrics``' grey convention,
like ``facd eval``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from facd.errors import DataError, NonFiniteOutputError

__all__ = [
    "ComparisonFigure",
    "PanelInfo",
    "RowInfo",
    "best_window",
    "build_comparison",
    "choose_crop",
    "comparison_rows",
    "parse_crop",
    "psnr_gap",
    "render_rows",
    "write_comparison",
]

Crop = tuple[int, int, int, int]  # x, y, w, h
Upscale = Callable[[np.ndarray], np.ndarray]

#: Side of a crop chosen by :func:`choose_crop`, in the given image's pixels.
AUTO_CROP = 64
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
    """One row: the image's name, its crop, its panels, and why the crop was chosen ("" when
    it was given)."""

    name: str
    crop: Crop
    panels: tuple[PanelInfo, ...]
    chosen: str = ""


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


def _window_means(err: np.ndarray, size: int, stride: int, shave: int):
    """Mean of ``err`` in every ``size`` square at ``stride`` inside the ``shave`` border:
    (xs, ys, means[ys, xs])."""
    h, w = err.shape
    ys = np.arange(shave, h - shave - size + 1, stride)
    xs = np.arange(shave, w - shave - size + 1, stride)
    if not len(ys) or not len(xs):
        return xs, ys, np.zeros((0, 0))
    integral = np.zeros((h + 1, w + 1))
    integral[1:, 1:] = err.cumsum(0).cumsum(1)
    y0, x0 = ys[:, None], xs[None, :]
    total = (
        integral[y0 + size, x0 + size]
        - integral[y0, x0 + size]
        - integral[y0 + size, x0]
        + integral[y0, x0]
    )
    return xs, ys, total / (size * size)


def best_window(
    hr: np.ndarray, sr_a: np.ndarray, sr_b: np.ndarray, size: int, stride: int, shave: int
) -> tuple[int, int, float, float] | None:
    """``(x, y, mse_a, mse_b)`` of the ``size`` square (steps of ``stride``, inside ``shave``
    pixels of border) where the two SR images' Y mean squared errors against ``hr`` differ
    most; None when no window fits. Planes as the metrics measure them (``gray="native"``)."""
    from facd.metrics import to_measurement_plane

    ya, yh = to_measurement_plane(sr_a, hr)
    yb, _ = to_measurement_plane(sr_b, hr)
    xs, ys, mse_a = _window_means((ya - yh) ** 2, size, stride, shave)
    if mse_a.size == 0:
        return None
    _, _, mse_b = _window_means((yb - yh) ** 2, size, stride, shave)
    iy, ix = np.unravel_index(int(np.argmax(np.abs(mse_a - mse_b))), mse_a.shape)
    return int(xs[ix]), int(ys[iy]), float(mse_a[iy, ix]), float(mse_b[iy, ix])


def psnr_gap(mse_a: float, mse_b: float) -> float:
    """PSNR_a - PSNR_b = 10 log10(mse_b / mse_a) (dB), with exact crops handled."""
    if mse_a == mse_b:
        return 0.0
    if mse_a == 0.0:
        return math.inf
    if mse_b == 0.0:
        return -math.inf
    return 10.0 * math.log10(mse_b / mse_a)


def choose_crop(
    hr: np.ndarray | None, sr_a: np.ndarray, sr_b: np.ndarray, scale: int, size: int = AUTO_CROP
) -> Crop:
    """The crop where ``sr_a`` and ``sr_b`` differ most (see the module docstring).

    With ``hr`` the crop is in its pixels, a ``size`` square (smaller if the image is) moving
    in steps of ``size // 2`` inside the ``scale`` border. Without ``hr`` the images' inputs
    are ``scale`` times smaller and the crop is in input pixels: a ``size`` square of the
    input, i.e. ``size * scale`` output pixels, moving in whole input pixels.
    """
    if hr is not None:
        height, width = hr.shape[:2]
        shave = scale if min(height, width) > 2 * scale else 0
        side = max(1, min(size, height - 2 * shave, width - 2 * shave))
        found = best_window(hr, sr_a, sr_b, side, max(1, side // 2), shave)
    else:
        side = max(1, min(size, sr_a.shape[0] // scale, sr_a.shape[1] // scale))
        found = best_window(sr_b, sr_a, sr_b, side * scale, max(1, side // 2) * scale, 0)
    assert found is not None  # the window fits inside the image by construction
    x, y = found[:2]
    if hr is None:
        x, y = x // scale, y // scale
    return x, y, side, side


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


Row = tuple[str, np.ndarray, Crop, list[tuple[str, np.ndarray, float | None]]]


def comparison_rows(
    images: Sequence[tuple[str, np.ndarray]],
    crops: Sequence[Crop | None],
    models: Sequence[tuple[str, Upscale]],
    scale: int,
    *,
    hr_is_input: bool = False,
    psnr_region: str = "image",
    crop_size: int = AUTO_CROP,
) -> tuple[list[Row], list[str]]:
    """What :func:`build_comparison` draws, measured but not drawn: one row
    ``(name, given image, crop, [(label, crop pixels, Y-PSNR or None), ...])`` per image (the
    panels: HR or input, bicubic, then each model) and, per row, why its crop was chosen ("" when
    it was given). Same arguments as :func:`build_comparison`."""
    from facd.data.imresize import bicubic_downsample, bicubic_upsample, modcrop

    if psnr_region not in ("image", "crop"):
        raise DataError(f"psnr_region must be 'image' or 'crop', got {psnr_region!r}")
    if len(crops) != len(images):
        raise DataError(f"got {len(images)} image(s) but {len(crops)} crop(s); give one per image")
    if not images:
        raise DataError("no images to compare")
    if crop_size < 1:
        raise DataError(f"crop_size must be >= 1, got {crop_size}")
    rows: list[Row] = []
    chosen: list[str] = []
    for (name, img), given in zip(images, crops, strict=True):
        if hr_is_input:
            lr, hr = img, None
            factor = scale
        else:
            hr = modcrop(img, scale)
            lr = bicubic_downsample(hr, scale)
            factor = 1
        shown = lr if hr is None else hr  # the image the crop is given in
        if given is not None:
            _check_crop(given, shown.shape[0], shown.shape[1], name)
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
        crop = given
        if crop is None:
            (a, sr_a), (b, sr_b) = outputs[1:3] if len(outputs) > 2 else outputs[1::-1]
            crop = choose_crop(hr, sr_a, sr_b, scale, crop_size)
            chosen.append(f"where {a} and {b} differ most")
        else:
            chosen.append("")
        panels: list[tuple[str, np.ndarray, float | None]] = [
            ("input" if hr is None else "HR", _cut(shown, crop), None)
        ]
        for label, sr in outputs:
            psnr = None
            if hr is not None:
                psnr = _psnr(sr, hr, scale, crop if psnr_region == "crop" else None)
            panels.append((label, _cut(sr, crop, factor), psnr))
        rows.append((name, img, crop, panels))
    return rows, chosen


def build_comparison(
    images: Sequence[tuple[str, np.ndarray]],
    crops: Sequence[Crop | None],
    models: Sequence[tuple[str, Upscale]],
    scale: int,
    *,
    hr_is_input: bool = False,
    psnr_region: str = "image",
    panel_width: int = 256,
    overview: bool = True,
    crop_size: int = AUTO_CROP,
) -> ComparisonFigure:
    """Build the figure for ``images`` (``(name, uint8 array)``), one crop per image.

    ``models`` are ``(label, upscale)`` with ``upscale(lr_uint8) -> sr_uint8`` (an
    :class:`facd.infer.api.Upscaler` works). Crops are in the given image's pixels; a None
    crop is chosen by :func:`choose_crop` (a ``crop_size`` square where the first two models,
    or the only model and bicubic, differ most; ``RowInfo.chosen`` says so).
    """
    rows, chosen = comparison_rows(
        images,
        crops,
        models,
        scale,
        hr_is_input=hr_is_input,
        psnr_region=psnr_region,
        crop_size=crop_size,
    )

    def second(label: str, psnr: float | None) -> str:
        if label == "HR":
            shave = scale if psnr_region == "image" else 0  # a crop is measured unshaved
            return f"Y-PSNR ({psnr_region}, shave {shave})"
        return "" if psnr is None else f"{_fmt(psnr)} dB"

    fig, infos = render_rows(rows, panel_width=panel_width, overview=overview, second_line=second)
    infos = tuple(replace(info, chosen=c) for info, c in zip(infos, chosen, strict=True))
    return ComparisonFigure(fig, infos, psnr_region)


def write_comparison(
    images: Sequence[Path],
    crops: Sequence[Crop],
    models: Sequence[tuple[str, str | Path]],
    scale: int,
    out: Path,
    panel_width: int = 256,
    device: str = "auto",
    psnr_region: str = "image",
) -> str:
    """Side-by-side crops of ``models`` (``(label, weights file)``) on the HR ``images`` with
    :func:`build_comparison`, written to ``out``; returns the Y-PSNR table as ``facd compare``
    prints it: on the whole image (shave = scale) or, with ``psnr_region="crop"``, on the
    crop. Whole images, no tiling."""
    from facd.data.image_io import read_image_raw, write_image
    from facd.infer.api import load

    loaded = [(label, load(str(ref), device=device, tile=0)) for label, ref in models]
    hr = [(Path(p).stem, read_image_raw(p)) for p in images]
    fig = build_comparison(
        hr, list(crops), loaded, scale, panel_width=panel_width, psnr_region=psnr_region
    )
    write_image(out, np.asarray(fig.image))
    shave = scale if fig.psnr_region == "image" else 0
    return f"Y-PSNR (dB) on the {fig.psnr_region}, shave {shave}:\n{fig.table()}\n"
