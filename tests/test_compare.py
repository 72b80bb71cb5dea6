"""``facd compare``: figure layout, panel pixels, labels, and PSNR equal to ``psnr_y``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import facd
from facd.archs.io import save_model
from facd.cli import main
from facd.compare import PAD, build_comparison, parse_crop
from facd.data.imresize import bicubic_downsample, bicubic_upsample, modcrop
from facd.errors import DataError
from facd.metrics import psnr_y

SCALE = 2


def _hr(h: int, w: int, seed: int = 0, grey: bool = False) -> np.ndarray:
    """A smooth image with some texture, so bicubic and networks differ but stay sensible."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    img = np.stack([base, base[::-1], 255 - base], axis=2) + rng.normal(0, 8, (h, w, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    return img[..., 0] if grey else img


@pytest.fixture(scope="module")
def up():
    torch.manual_seed(0)
    with pytest.warns(facd.UntrainedWeightsWarning):  # random weights are the point here
        return facd.load("edsr-tiny-s", scale=SCALE, device="cpu", tile=0)


def test_layout_pixels_and_psnr(up) -> None:
    images = [("a", _hr(41, 60)), ("b", _hr(50, 30, seed=1, grey=True))]
    crops = [(10, 4, 20, 16), (0, 10, 12, 24)]
    fig = build_comparison(images, crops, [("tiny", up)], SCALE, panel_width=64)
    w, h = fig.size
    assert w == PAD + 4 * (64 + PAD)  # overview, HR, bicubic, tiny
    assert [p.label for p in fig.rows[0].panels] == ["overview", "HR", "Bicubic", "tiny"]
    for row, (name, img), crop in zip(fig.rows, images, crops, strict=True):
        x, y, cw, ch = crop
        hr = modcrop(img, SCALE)
        lr = bicubic_downsample(hr, SCALE)
        outputs = {"Bicubic": bicubic_upsample(lr, SCALE), "tiny": up(lr), "HR": hr}
        for panel in row.panels[1:]:
            x0, y0, x1, y1 = panel.box
            assert (x1 - x0, y1 - y0) == (64, round(64 * ch / cw))
            assert x0 >= 0 and x1 <= w and y0 >= 0 and y1 <= h
            # the panel shows the crop enlarged with nearest neighbours
            want = outputs[panel.label][y : y + ch, x : x + cw]
            want = np.asarray(
                Image.fromarray(want).convert("RGB").resize((x1 - x0, y1 - y0), Image.NEAREST)
            )
            assert np.array_equal(np.asarray(fig.image)[y0:y1, x0:x1], want)
            # text under the panel: label and PSNR, drawn in dark pixels
            below = np.asarray(fig.image.convert("L"))[y1 : y1 + 20, x0:x1]
            assert below.min() < 100
            assert panel.text[0] == panel.label
            if panel.label != "HR":
                expected = psnr_y(outputs[panel.label], hr, shave=SCALE)
                assert panel.psnr == pytest.approx(expected, abs=1e-12)
                assert panel.text[1] == f"{expected:.2f} dB"
        assert row.name == name
    assert "tiny" in fig.table() and f"{fig.rows[0].panels[2].psnr:.2f}" in fig.table()


def test_psnr_on_crop(up) -> None:
    img = _hr(40, 40)
    crop = (6, 8, 20, 14)
    fig = build_comparison([("a", img)], [crop], [("tiny", up)], SCALE, psnr_region="crop")
    lr = bicubic_downsample(img, SCALE)
    x, y, w, h = crop
    sr = up(lr)[y : y + h, x : x + w]
    assert fig.rows[0].panels[-1].psnr == pytest.approx(
        psnr_y(sr, img[y : y + h, x : x + w], shave=0), abs=1e-12
    )
    hr_panel = next(p for p in fig.rows[0].panels if p.label == "HR")
    assert hr_panel.label == "HR" and hr_panel.text[1] == "Y-PSNR (crop, shave 0)"


def test_hr_is_input(up) -> None:
    lr = _hr(20, 24)
    fig = build_comparison(
        [("in", lr)], [(2, 3, 8, 8)], [("tiny", up)], SCALE, hr_is_input=True, overview=False
    )
    labels = [p.label for p in fig.rows[0].panels]
    assert labels == ["input", "Bicubic", "tiny"]
    assert all(p.psnr is None for p in fig.rows[0].panels)
    assert fig.size[0] == PAD + 3 * (256 + PAD)


def test_errors(up) -> None:
    with pytest.raises(DataError, match="leaves"):
        build_comparison([("a", _hr(20, 20))], [(10, 10, 12, 4)], [("m", up)], SCALE)
    with pytest.raises(DataError, match="one per image"):
        build_comparison([("a", _hr(20, 20))], [], [("m", up)], SCALE)
    with pytest.raises(DataError):
        parse_crop("1,2,3")
    with pytest.raises(DataError):
        parse_crop("0,0,0,5")


def test_cli(tmp_path, up, capsys) -> None:
    ckpt = tmp_path / "m.safetensors"
    save_model(ckpt, up.model, up.spec)
    hr = _hr(30, 44)
    Image.fromarray(hr).save(tmp_path / "img.png")
    out = tmp_path / "fig.png"
    args = ["compare", str(tmp_path / "img.png"), "-m", f"ours={ckpt}", "bic2=edsr-tiny-s"]
    assert main([*args, "--scale", "2", "--crop", "4,4,16,16", "-o", str(out)]) == 0
    fig = Image.open(out)
    assert fig.size[0] == PAD + 5 * (256 + PAD)
    table = capsys.readouterr().out
    lr = bicubic_downsample(hr, 2)
    assert f"{psnr_y(up(lr), hr, shave=2):.2f}" in table
    assert main([*args, "--scale", "2", "--crop", "40,4,16,16", "-o", str(out)]) == 2
    with pytest.raises(SystemExit):  # argparse: not NAME=MODEL
        main(["compare", str(tmp_path / "img.png"), "-m", "bad", "--scale", "2"])
