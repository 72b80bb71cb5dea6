"""Tests for facd.metrics: hand-computed cases, an independent SSIM loop, twins, skimage."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from facd.errors import FacdError
from facd.metrics import (
    GRAY_WEIGHTS,
    METRICS,
    TORCH_METRICS,
    psnr_y,
    psnr_y_torch,
    quantize,
    quantize_torch,
    rgb_to_gray,
    rgb_to_y,
    ssim_map,
    ssim_y,
    ssim_y_torch,
    to_measurement_plane,
)

C1 = (0.01 * 255) ** 2
C2 = (0.03 * 255) ** 2


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _naive_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Direct transcription of MATLAB ssim_index: explicit 11x11 window, one window at a time."""
    r = np.arange(-5, 6, dtype=np.float64)
    w = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
    w /= w.sum()
    vals = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx = (w * (px - mx) ** 2).sum()
            vy = (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            vals.append(
                (2 * mx * my + C1) * (2 * cxy + C2) / ((mx**2 + my**2 + C1) * (vx + vy + C2))
            )
    return float(np.mean(vals))


# --------------------------------------------------------------------- colour conversion


def test_y_of_pure_colours() -> None:
    img = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    y = rgb_to_y(img)
    assert y.dtype == np.float64
    expected = [235.0, 16.0, 16 + 65.481, 16 + 128.553, 16 + 24.966]
    np.testing.assert_allclose(y[0], expected, rtol=0, atol=1e-12)


def test_y_is_not_rounded() -> None:
    # (1, 0, 0) -> 16 + 65.481 / 255 = 16.2567...; rounding would give 16.
    y = rgb_to_y(np.array([[[1, 0, 0]]], np.uint8))
    assert y[0, 0] == pytest.approx(16 + 65.481 / 255, abs=1e-12)


def test_gray_weights_and_rounding_match_matlab() -> None:
    # MATLAB documents rgb2gray as 0.298936 R + 0.587043 G + 0.114021 B (6 decimals).
    assert [round(c, 6) for c in GRAY_WEIGHTS] == [0.298936, 0.587043, 0.114021]
    img = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], np.uint8)
    # 76.229 -> 76, 149.696 -> 150, 29.075 -> 29, 2.989+11.741+3.421 = 18.151 -> 18
    np.testing.assert_array_equal(rgb_to_gray(img)[0], [76, 150, 29, 18])
    v = np.arange(256, dtype=np.uint8)
    grey_rgb = np.stack([v, v, v], axis=-1)[None]
    np.testing.assert_array_equal(rgb_to_gray(grey_rgb)[0], v.astype(np.float64))


def test_quantisation_rounds_half_to_even_and_clamps() -> None:
    k = np.arange(20)
    for dtype in (np.float64, np.float32):
        x = ((k + 0.5) / 255).astype(dtype)
        assert np.all(x * dtype(255) == k + 0.5)  # the products are exact ties
        expected = np.where(k % 2 == 0, k, k + 1)
        np.testing.assert_array_equal(quantize(x), expected)
        np.testing.assert_array_equal(quantize_torch(torch.from_numpy(x)).numpy(), expected)
    out = quantize(np.array([-0.2, 1.7], np.float32))
    np.testing.assert_array_equal(out, [0, 255])


# ----------------------------------------------------------------------------- PSNR


def test_psnr_of_one_grey_level_offset() -> None:
    hr = _rng().integers(0, 255, (20, 24), dtype=np.uint8)  # <= 254 so +1 stays in range
    sr = hr + np.uint8(1)
    # MSE = 1 on grey values -> 10 log10(255^2).
    assert psnr_y(sr, hr, shave=0) == pytest.approx(20 * math.log10(255), abs=1e-12)


def test_psnr_of_rgb_offset_on_y() -> None:
    hr = _rng(1).integers(0, 255, (16, 18, 3), dtype=np.uint8)
    sr = hr + np.uint8(1)
    # +1 on R, G, B moves Y by (65.481 + 128.553 + 24.966) / 255 = 219 / 255.
    expected = 10 * math.log10(255**2 / (219 / 255) ** 2)
    assert psnr_y(sr, hr, shave=2) == pytest.approx(expected, abs=1e-9)


def test_psnr_of_known_mse() -> None:
    hr = np.full((8, 8), 100, np.uint8)
    sr = hr.copy()
    sr[2, 3] = 103
    sr[5, 5] = 97
    sr[6, 1] = 102
    # squared errors 9 + 9 + 4 = 22 over 64 pixels.
    assert psnr_y(sr, hr, shave=0) == pytest.approx(10 * math.log10(255**2 * 64 / 22), abs=1e-12)


def test_psnr_identical_is_inf() -> None:
    hr = _rng(2).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    assert psnr_y(hr, hr, shave=1) == math.inf
    t = torch.from_numpy(hr).permute(2, 0, 1)[None].float() / 255
    assert torch.isinf(psnr_y_torch(t, t, shave=1)).all()


def test_shave_removes_border_errors() -> None:
    hr = _rng(3).integers(0, 256, (40, 36, 3), dtype=np.uint8)
    sr = hr.copy()
    s = 4
    border = np.ones(hr.shape[:2], bool)
    border[s:-s, s:-s] = False
    sr[border] = 255 - sr[border]
    assert psnr_y(sr, hr, shave=s) == math.inf
    assert ssim_y(sr, hr, shave=s) == pytest.approx(1.0, abs=1e-12)
    assert math.isfinite(psnr_y(sr, hr, shave=s - 1))


def test_float_sr_is_quantised_before_measuring() -> None:
    hr = _rng(4).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    noise = _rng(5).uniform(-0.45, 0.45, hr.shape)
    sr = (hr + noise) / 255.0
    sr[hr == 255] = 1.3  # clamped back to 255
    assert psnr_y(sr, hr, shave=0) == math.inf


# ----------------------------------------------------------------------------- SSIM


def test_ssim_identical_is_one() -> None:
    hr = _rng(6).integers(0, 256, (30, 30, 3), dtype=np.uint8)
    assert ssim_y(hr, hr, shave=2) == pytest.approx(1.0, abs=1e-12)


def test_ssim_constant_shift_of_flat_image() -> None:
    a, c = 100.0, 7.0
    hr = np.full((20, 20), a, np.uint8)
    sr = np.full((20, 20), a + c, np.uint8)
    # Zero variances: contrast/structure term is C2 / C2 = 1; only luminance remains.
    expected = (2 * a * (a + c) + C1) / (a**2 + (a + c) ** 2 + C1)
    assert ssim_y(sr, hr, shave=0) == pytest.approx(expected, abs=1e-12)


def test_ssim_constant_shift_of_textured_image() -> None:
    x = _rng(7).integers(0, 200, (16, 17), dtype=np.uint8)
    c = 30
    # x and x + c share variances and covariance, so SSIM is the mean luminance term,
    # built here from local means computed with an explicit 2-D Gaussian window.
    r = np.arange(-5, 6, dtype=np.float64)
    w = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / 4.5)
    w /= w.sum()
    mu = np.array(
        [[(w * x[i : i + 11, j : j + 11]).sum() for j in range(7)] for i in range(6)],
    )
    lum = (2 * mu * (mu + c) + C1) / (mu**2 + (mu + c) ** 2 + C1)
    assert ssim_y(x + np.uint8(c), x, shave=0) == pytest.approx(lum.mean(), abs=1e-10)


def test_ssim_map_is_valid_sized() -> None:
    x = _rng(8).uniform(0, 255, (30, 41))
    assert ssim_map(x, x + 1).shape == (20, 31)
    assert ssim_map(x[:11, :11], x[:11, :11]).shape == (1, 1)
    with pytest.raises(FacdError):
        ssim_map(x[:10], x[:10])


def test_ssim_matches_naive_window_loop() -> None:
    rng = _rng(9)
    hr = rng.integers(0, 256, (24, 27, 3), dtype=np.uint8)
    sr = np.clip(hr + rng.normal(0, 12, hr.shape), 0, 255).astype(np.uint8)
    expected = _naive_ssim(rgb_to_y(sr)[3:-3, 3:-3], rgb_to_y(hr)[3:-3, 3:-3])
    assert ssim_y(sr, hr, shave=3) == pytest.approx(expected, abs=1e-12)


def test_ssim_matches_skimage_valid_region() -> None:
    skm = pytest.importorskip("skimage.metrics")
    rng = _rng(10)
    hr = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    sr = np.clip(hr + rng.normal(0, 20, hr.shape), 0, 255).astype(np.uint8)
    y_sr, y_hr = rgb_to_y(sr), rgb_to_y(hr)
    _, smap = skm.structural_similarity(
        y_sr,
        y_hr,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        full=True,
    )
    assert ssim_y(sr, hr, shave=0) == pytest.approx(smap[5:-5, 5:-5].mean(), abs=1e-6)


# ------------------------------------------------------------------ numpy <-> torch


@pytest.mark.parametrize(("h", "w", "shave"), [(32, 32, 2), (45, 61, 3), (64, 50, 4)])
def test_torch_twins_agree_with_numpy(h: int, w: int, shave: int) -> None:
    g = torch.Generator().manual_seed(h * w)
    hr = torch.randint(0, 256, (3, 3, h, w), generator=g, dtype=torch.uint8)
    sr = (hr.float() / 255 + 0.05 * torch.randn(hr.shape, generator=g)).float()  # some out of [0,1]
    p = psnr_y_torch(sr, hr.float() / 255, shave)
    s = ssim_y_torch(sr, hr.float() / 255, shave)
    assert p.dtype == torch.float64 and p.shape == (3,)
    assert s.dtype == torch.float64 and s.shape == (3,)
    for i in range(3):
        sr_np = sr[i].permute(1, 2, 0).numpy()
        hr_np = hr[i].permute(1, 2, 0).numpy()
        assert abs(p[i].item() - psnr_y(sr_np, hr_np, shave)) < 1e-6
        assert abs(s[i].item() - ssim_y(sr_np, hr_np, shave)) < 1e-7


@pytest.mark.parametrize("gray", ["native", "y"])
def test_torch_gray_mask_agrees_with_numpy(gray: str) -> None:
    g = torch.Generator().manual_seed(11)
    hr = torch.randint(0, 256, (3, 3, 30, 34), generator=g, dtype=torch.uint8)
    hr[0] = hr[0, :1]  # images 0 and 2 are grey, replicated in a 3-channel batch
    hr[2] = hr[2, :1]
    sr = (hr.float() + 9 * torch.randn(hr.shape, generator=g)).clamp(0, 255) / 255
    mask = torch.tensor([True, False, True])
    p = psnr_y_torch(sr, hr, 2, hr_is_gray=mask, gray=gray)
    s = ssim_y_torch(sr, hr, 2, hr_is_gray=mask, gray=gray)
    for i in range(3):
        sr_np = sr[i].permute(1, 2, 0).numpy()
        hr_np = hr[i, 0].numpy() if mask[i] else hr[i].permute(1, 2, 0).numpy()
        assert abs(p[i].item() - psnr_y(sr_np, hr_np, 2, gray=gray)) < 1e-6
        assert abs(s[i].item() - ssim_y(sr_np, hr_np, 2, gray=gray)) < 1e-7
    # A 1-channel HR tensor is grey without the mask; a 1-channel SR is used as it is.
    p1 = psnr_y_torch(sr[:, :1], hr[:, :1], 2, gray=gray)
    for i in range(3):
        ref = psnr_y(sr[i, 0].numpy(), hr[i, 0].numpy(), 2, gray=gray)
        assert abs(p1[i].item() - ref) < 1e-6


def test_registries() -> None:
    assert METRICS["psnr_y"] is psnr_y and METRICS["ssim_y"] is ssim_y
    assert TORCH_METRICS["psnr_y"] is psnr_y_torch and TORCH_METRICS["ssim_y"] is ssim_y_torch


# ------------------------------------------------------------------ gray convention


def test_native_gray_uses_rgb2gray_of_sr() -> None:
    hr = np.full((4, 4), 80, np.uint8)
    sr = np.zeros((4, 4, 3), np.uint8)
    sr[..., 0] = 255  # rgb2gray -> 76
    a, b = to_measurement_plane(sr, hr, gray="native")
    np.testing.assert_array_equal(a, 76.0)
    np.testing.assert_array_equal(b, 80.0)
    a, b = to_measurement_plane(sr, hr, gray="y")
    np.testing.assert_allclose(a, 16 + 65.481, atol=1e-12)
    np.testing.assert_allclose(b, 16 + 80 * 219 / 255, atol=1e-12)


@pytest.mark.data
def test_bridge_gray_conventions_differ_by_y_scaling(data_root) -> None:
    hr = np.asarray(Image.open(data_root / "Set14" / "HR" / "bridge.png"))
    lr = np.asarray(Image.open(data_root / "Set14" / "LR_bicubic" / "X4" / "bridgex4.png"))
    assert hr.ndim == 2 and lr.ndim == 2  # stored single-channel
    sr_grey = lr.repeat(4, axis=0).repeat(4, axis=1)  # nearest-neighbour x4, a fixed degradation
    sr = np.repeat(sr_grey[..., None], 3, axis=2)  # replicated grey, as an RGB network outputs
    native = psnr_y(sr, hr, shave=4, gray="native")
    as_y = psnr_y(sr, hr, shave=4, gray="y")
    # For R = G = B = v, rgb2gray gives v back, while Y = 16 + 219 v / 255: every Y error is
    # 219/255 times the grey error, so MSE shrinks by (219/255)^2 and PSNR grows by
    # 20 log10(255/219) ~ 1.32 dB.
    assert as_y - native == pytest.approx(20 * math.log10(255 / 219), abs=0.01)
    assert native == pytest.approx(psnr_y(sr_grey, hr, shave=4), abs=1e-12)


@pytest.mark.data
def test_ssim_matches_skimage_on_real_image(data_root) -> None:
    skm = pytest.importorskip("skimage.metrics")
    hr = np.asarray(Image.open(data_root / "Set5" / "HR" / "bird.png").convert("RGB"))
    lr = np.asarray(Image.open(data_root / "Set5" / "LR_bicubic" / "X4" / "birdx4.png"))
    sr = lr.repeat(4, axis=0).repeat(4, axis=1)
    y_sr, y_hr = rgb_to_y(sr)[4:-4, 4:-4], rgb_to_y(hr)[4:-4, 4:-4]
    _, smap = skm.structural_similarity(
        y_sr,
        y_hr,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        full=True,
    )
    assert ssim_y(sr, hr, shave=4) == pytest.approx(smap[5:-5, 5:-5].mean(), abs=1e-6)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("sr", "hr", "kwargs"),
    [
        (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8), {}),
        (np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.uint8), {}),
        (np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 4), np.uint8), {}),
        (np.zeros((8, 8), np.int16), np.zeros((8, 8), np.uint8), {}),
        (np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8), {"gray": "rgb"}),
        (np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8), {"shave": -1}),
        (np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8), {"shave": 4}),
    ],
)
def test_bad_inputs_raise_one_line_errors(sr, hr, kwargs) -> None:
    kwargs = {"shave": 0, **kwargs}
    with pytest.raises(FacdError) as exc:
        psnr_y(sr, hr, **kwargs)
    assert "\n" not in str(exc.value)


def test_bad_torch_inputs_raise() -> None:
    x = torch.zeros(2, 3, 16, 16)
    with pytest.raises(FacdError):
        psnr_y_torch(x, torch.zeros(2, 3, 16, 15), 0)
    with pytest.raises(FacdError):
        psnr_y_torch(x, x, 0, hr_is_gray=torch.tensor([True, False, True]))
    with pytest.raises(FacdError):
        psnr_y_torch(x[:, :1], x, 0)  # grey SR against RGB HR
    with pytest.raises(FacdError):
        ssim_y(np.zeros((20, 20), np.uint8), np.zeros((20, 20), np.uint8), shave=5)
