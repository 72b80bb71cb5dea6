"""``facd compare`` without ``--crop``: the crop is chosen where the models differ most."""

from __future__ import annotations

import numpy as np
from PIL import Image

from facd.cli import main
from facd.compare import build_comparison, choose_crop
from facd.data.imresize import bicubic_downsample, bicubic_upsample, modcrop

SCALE = 2


def _hr(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    img = np.stack([base, base[::-1], 255 - base], axis=2) + rng.normal(0, 8, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _planted(x: int, y: int, side: int):
    """A model equal to bicubic except for a bright square at (x, y) of the output."""

    def upscale(lr: np.ndarray) -> np.ndarray:
        out = bicubic_upsample(lr, SCALE).copy()
        out[y : y + side, x : x + side] = 255
        return out

    return upscale


def _overlap(crop: tuple[int, int, int, int], x: int, y: int, side: int, factor: int = 1) -> int:
    """Pixels of the planted square (output pixels) inside ``crop`` (scaled by ``factor``)."""
    cx, cy, cw, ch = (v * factor for v in crop)
    return max(0, min(cx + cw, x + side) - max(cx, x)) * max(0, min(cy + ch, y + side) - max(cy, y))


def test_choose_crop_finds_a_planted_difference() -> None:
    hr = modcrop(_hr(80, 120), SCALE)
    lr = bicubic_downsample(hr, SCALE)
    a, b = _planted(72, 40, 12)(lr), bicubic_upsample(lr, SCALE)
    crop = choose_crop(hr, a, b, SCALE, size=16)
    assert crop[2:] == (16, 16)
    assert _overlap(crop, 72, 40, 12) >= 12 * 12 // 2  # windows step by 8: most of the square
    # without ground truth the crop is in input pixels and covers the square as well
    crop = choose_crop(None, a, b, SCALE, size=8)
    assert crop[2:] == (8, 8)
    assert _overlap(crop, 72, 40, 12, factor=SCALE) >= 12 * 12 // 2


def test_choose_crop_shrinks_to_small_images() -> None:
    hr = _hr(12, 30)
    x, y, w, h = choose_crop(hr, hr, hr, SCALE, size=64)
    assert w == h == 12 - 2 * SCALE and x >= SCALE and y >= SCALE


def test_build_comparison_chooses_when_no_crop_is_given() -> None:
    models = [("A", _planted(16, 20, 10)), ("B", lambda lr: bicubic_upsample(lr, SCALE))]
    fig = build_comparison([("img", _hr(60, 80))], [None], models, SCALE, crop_size=16)
    row = fig.rows[0]
    assert row.crop[2:] == (16, 16) and _overlap(row.crop, 16, 20, 10) >= 10 * 10 // 2
    assert row.chosen == "where A and B differ most"
    given = build_comparison([("img", _hr(60, 80))], [(0, 0, 8, 8)], models, SCALE)
    assert given.rows[0].chosen == ""


def test_cli_without_crop(tmp_path, capsys) -> None:
    """The README's command line: no --crop (it was required before)."""
    Image.fromarray(_hr(40, 48)).save(tmp_path / "img.png")
    out = tmp_path / "fig.png"
    teacher = "facd-asset:teacher-edsr-tiny-t-x4.safetensors"
    code = main(["compare", str(tmp_path / "img.png"), "--models", f"T={teacher}", "-o", str(out)])
    assert code == 0 and out.is_file()
    assert "img: crop " in capsys.readouterr().err
