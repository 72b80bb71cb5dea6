"""``facd.load`` / ``Upscaler`` and ``facd upscale``: input kinds, image modes, options, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import facd
from facd.archs.io import save_model
from facd.cli import main
from facd.data.imresize import bicubic_upsample
from facd.errors import DataError, FacdError
from facd.infer.api import Upscaler
from facd.infer.device import half_supported
from facd.infer.tiling import receptive_margin
from facd.metrics import rgb_to_gray

SCALE = 2


@pytest.fixture(scope="module")
def up() -> Upscaler:
    torch.manual_seed(0)
    with pytest.warns(facd.UntrainedWeightsWarning):  # random weights are the point here
        return facd.load("edsr-tiny-s", scale=SCALE, device="cpu", tile=0)


def _direct(up: Upscaler, lr_uint8: np.ndarray) -> np.ndarray:
    """The network run by hand on the whole image, quantised like the evaluation."""
    x = torch.from_numpy(np.array(lr_uint8)).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y = up.model(x)[0].clamp(0, 1)
    return (y * 255).round().byte().permute(1, 2, 0).numpy()


def _rng_image(h: int, w: int, c: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (h, w) if c == 1 else (h, w, c)
    return rng.integers(0, 256, shape, dtype=np.uint8)


# ----------------------------------------------------------------------------- API


def test_description(up: Upscaler) -> None:
    d = up.description
    assert (d.arch, d.scale, d.channels) == ("edsr", SCALE, 3)
    assert d.parameters == sum(p.numel() for p in up.model.parameters())
    assert d.size_requirements.minimum == 1 and d.size_requirements.multiple_of == 1
    assert d.supports_half is True and d.exact_tiling is True
    assert d.receptive_margin == receptive_margin(d.spec)
    with pytest.raises(AttributeError):
        d.scale = 3  # frozen


def test_uint8_array_matches_direct_run(up: Upscaler) -> None:
    lr = _rng_image(20, 27)
    out = up(lr)
    assert out.dtype == np.uint8 and out.shape == (40, 54, 3)
    assert np.array_equal(out, _direct(up, lr))


def test_tiled_equals_whole_image(up: Upscaler) -> None:
    lr = _rng_image(31, 26)
    whole = up(lr, tile=0)
    m = up.description.receptive_margin
    tiled = up(lr.astype(np.float32) / 255, tile=12, overlap="exact", batch=3)
    direct = up(lr.astype(np.float32) / 255, tile=0)
    assert np.abs(tiled - direct).max() <= 1e-5
    assert np.array_equal(up(lr, tile=12, overlap=m), whole)
    # the tail on exact sub-tiles (any size), with or without body tiles
    for kw in ({"tile": 0}, {"tile": 10, "overlap": "exact"}):
        sub = up(lr.astype(np.float32) / 255, tail_tile=5, **kw)
        assert np.abs(sub - direct).max() <= 1e-5


def test_float_array_and_tensor_inputs(up: Upscaler) -> None:
    lr = _rng_image(16, 12)
    ref = _direct(up, lr).astype(np.float64) / 255
    for dtype in (np.float32, np.float64):
        out = up(lr.astype(dtype) / 255)
        assert out.dtype == dtype and out.shape == (32, 24, 3)
        assert np.abs(out - ref).max() <= 0.5 / 255 + 1e-6
        assert out.min() >= 0 and out.max() <= 1
    t = torch.from_numpy(lr).permute(2, 0, 1).float() / 255
    chw = up(t)
    assert isinstance(chw, torch.Tensor) and chw.shape == (3, 32, 24)
    nchw = up(torch.stack([t, t.flip(-1)]))
    assert nchw.shape == (2, 3, 32, 24)
    assert torch.allclose(nchw[0], chw) and torch.allclose(nchw[1], up(t.flip(-1)))
    assert np.abs(chw.permute(1, 2, 0).numpy() - ref).max() <= 0.5 / 255 + 1e-6


def test_pil_modes(up: Upscaler) -> None:
    rgb = _rng_image(10, 14)
    out = up(Image.fromarray(rgb))
    assert out.mode == "RGB" and out.size == (28, 20)
    assert np.array_equal(np.asarray(out), _direct(up, rgb))
    grey = up(Image.fromarray(rgb[..., 0]))
    assert grey.mode == "L" and grey.size == (28, 20)
    rgba = np.dstack([rgb, _rng_image(10, 14, 1, seed=1)])
    out = up(Image.fromarray(rgba, mode="RGBA"))
    assert out.mode == "RGBA"
    with pytest.raises(DataError, match="16"):
        up(Image.fromarray(rgb[..., 0].astype(np.uint16) * 200))


def test_grey_is_rgb2gray_of_rgb_output(up: Upscaler) -> None:
    g = _rng_image(18, 11, 1)
    out = up(g)
    assert out.dtype == np.uint8 and out.shape == (36, 22)
    rgb = _direct(up, np.repeat(g[..., None], 3, axis=2))
    assert np.array_equal(out, rgb_to_gray(rgb).astype(np.uint8))
    assert up(g[..., None]).shape == (36, 22, 1)


def test_alpha_is_bicubic(up: Upscaler) -> None:
    rgb = _rng_image(12, 9)
    alpha = _rng_image(12, 9, 1, seed=3)
    out = up(np.dstack([rgb, alpha]))
    assert out.shape == (24, 18, 4)
    assert np.array_equal(out[..., :3], _direct(up, rgb))
    assert np.array_equal(out[..., 3], bicubic_upsample(alpha, SCALE))
    la = up(np.dstack([rgb[..., 0], alpha]))
    assert la.shape == (24, 18, 2)
    assert np.array_equal(la[..., 1], bicubic_upsample(alpha, SCALE))


def test_self_ensemble_is_mean_of_8_transforms(up: Upscaler) -> None:
    x = torch.rand(3, 9, 13)
    outs = []
    with torch.no_grad():
        for rot in range(4):
            for flip in (False, True):
                xt = torch.rot90(x, rot, (1, 2))
                xt = xt.flip(-1) if flip else xt
                y = up.model(xt[None])[0]
                y = y.flip(-1) if flip else y
                outs.append(torch.rot90(y, -rot, (1, 2)))
    expected = torch.stack(outs).mean(0).clamp(0, 1)
    got = up(x, self_ensemble=True)
    assert (got - expected).abs().max().item() <= 1e-5
    assert (got - up(x)).abs().max().item() > 1e-4


def test_options_and_errors(up: Upscaler) -> None:
    with pytest.raises(FacdError, match="unknown option"):
        up(np.zeros((4, 4, 3), np.uint8), tiles=3)
    with pytest.raises(FacdError):
        up(np.zeros((4, 4, 3), np.uint8), batch=0)
    with pytest.raises(FacdError, match="integer"):
        up(np.zeros((4, 4, 3), np.uint8), overlap="wide")
    with pytest.raises(DataError, match="16-bit"):
        up(np.zeros((4, 4, 3), np.uint16))
    with pytest.raises(DataError):
        up(torch.zeros(4, 4))
    with pytest.raises(DataError):
        up("image.png")
    if not half_supported(torch.device("cpu"), torch.float16):
        with pytest.raises(FacdError, match="fp16"):
            up(np.zeros((4, 4, 3), np.uint8), precision="fp16")
    with pytest.raises(FacdError, match="precision"):
        up(np.zeros((4, 4, 3), np.uint8), precision="fp8")


def test_load_checkpoint_and_module(tmp_path) -> None:
    from facd.archs import build_model, preset_spec

    net = build_model(preset_spec("rcan-tiny-s", 3))
    path = tmp_path / "rcan.safetensors"
    save_model(path, net, net.spec)
    a = facd.load(str(path), device="cpu")
    b = facd.load(net, device="cpu")
    assert a.description.arch == "rcan" and a.scale == 3 and not a.description.exact_tiling
    lr = _rng_image(8, 10)
    assert np.array_equal(a(lr), b(lr))
    with pytest.raises(FacdError, match="x2"):
        facd.load(str(path), scale=2)
    with pytest.raises(FacdError):
        facd.load("edsr-tiny-s")  # preset without scale


# ----------------------------------------------------------------------------- CLI


def _write(path, arr: np.ndarray, **kw) -> None:
    Image.fromarray(arr).save(path, **kw)


@pytest.fixture(scope="module")
def ckpt(up: Upscaler, tmp_path_factory) -> str:
    """The fixture network as a checkpoint, so every CLI run uses the same weights."""
    path = tmp_path_factory.mktemp("ckpt") / "edsr_tiny.safetensors"
    save_model(path, up.model, up.spec)
    return str(path)


@pytest.fixture
def _cli(ckpt: str):
    def run(*args: str) -> int:
        return main(["upscale", ckpt, *args, "--quiet"])

    return run


def test_cli_folder_glob_and_names(tmp_path, up: Upscaler, _cli) -> None:
    src = tmp_path / "in"
    src.mkdir()
    a, b = _rng_image(16, 20), _rng_image(9, 7, seed=5)
    _write(src / "a.png", a)
    _write(src / "b.bmp", b)
    out = tmp_path / "out"
    assert _cli(str(src), "-o", str(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_x2.png", "b_x2.png"]
    assert np.asarray(Image.open(out / "a_x2.png")).shape == (32, 40, 3)
    out2 = tmp_path / "out2"
    assert _cli(str(src / "*.png"), "-o", str(out2), "--format", "webp", "--tile", "8") == 0
    assert [p.name for p in out2.iterdir()] == ["a_x2.webp"]
    # lossless WebP, exact tiling at the margin: same pixels as the whole-image PNG
    out3 = tmp_path / "out3"
    assert _cli(str(src / "a.png"), "-o", str(out3), "--tile", "6", "--tile-overlap", "exact") == 0
    assert np.array_equal(
        np.asarray(Image.open(out3 / "a_x2.png")), np.asarray(Image.open(out / "a_x2.png"))
    )


def test_cli_grey_alpha_and_exif(tmp_path, up: Upscaler, _cli) -> None:
    src = tmp_path / "in"
    src.mkdir()
    _write(src / "grey.png", _rng_image(10, 12, 1))
    rgba = np.dstack([_rng_image(10, 12), np.full((10, 12), 128, np.uint8)])
    _write(src / "alpha.png", rgba)
    opaque = np.dstack([_rng_image(10, 12), np.full((10, 12), 255, np.uint8)])
    _write(src / "opaque.png", opaque)
    img = Image.fromarray(_rng_image(10, 16))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    img.save(src / "rot.jpg", exif=exif.tobytes(), quality=95)
    out = tmp_path / "out"
    assert _cli(str(src), "-o", str(out)) == 0
    got = Image.open(out / "grey_x2.png")
    assert got.mode == "L"
    assert np.array_equal(np.asarray(got), up(np.asarray(Image.open(src / "grey.png"))))
    got = Image.open(out / "alpha_x2.png")
    assert got.mode == "RGBA" and got.size == (24, 20)
    assert np.array_equal(np.asarray(got)[..., 3], bicubic_upsample(rgba[..., 3], SCALE))
    assert np.array_equal(np.asarray(got)[..., :3], _direct(up, rgba[..., :3]))
    assert Image.open(out / "opaque_x2.png").mode == "RGB"
    rot = np.asarray(Image.open(out / "rot_x2.png"))
    assert rot.shape == (32, 20, 3)  # upright: 10 wide, 16 high, x2
    upright = np.asarray(Image.open(src / "rot.jpg").transpose(Image.Transpose.ROTATE_270))
    assert np.array_equal(rot, _direct(up, upright))


def test_cli_errors(tmp_path, capsys, _cli) -> None:
    src = tmp_path / "in"
    src.mkdir()
    rgba = np.dstack([_rng_image(8, 8), np.zeros((8, 8), np.uint8)])
    _write(src / "alpha.png", rgba)
    assert _cli(str(src / "alpha.png"), "-o", str(tmp_path / "o"), "--format", "jpg") == 2
    assert "JPEG cannot store alpha" in capsys.readouterr().err
    Image.fromarray(np.full((8, 8), 4000, np.uint16)).save(src / "deep.png")
    assert _cli(str(src / "deep.png"), "-o", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err.strip()
    assert "16 bits" in err and len(err.splitlines()) == 1
    assert _cli(str(tmp_path / "missing.png"), "-o", str(tmp_path / "o")) == 2
    assert _cli(str(tmp_path / "*.tif"), "-o", str(tmp_path / "o")) == 2
    other = tmp_path / "other"
    other.mkdir()
    _write(other / "alpha.png", _rng_image(8, 8))
    assert _cli(str(src / "alpha.png"), str(other / "alpha.png"), "-o", str(tmp_path / "o")) == 2
    assert "both be written" in capsys.readouterr().err
    assert _cli(
        str(other), "-o", str(tmp_path / "o"), "--precision", "bf16", "--device", "cpu"
    ) in (
        0,
        2,
    )
