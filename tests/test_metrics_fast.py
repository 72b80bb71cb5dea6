"""The evaluation's faster metrics give the same bits as the plain formulas.

``ssim_map`` computes its map in strips of ``SSIM_STRIP`` output rows and sums its filters in
place; ``psnr_ssim_y`` computes the measured planes once for both metrics. Each is compared
here, bit for bit, with the plain whole-plane computation written out below (a sum of
weighted shifted slices, as the metric was computed before).
"""

from __future__ import annotations

import numpy as np

from facd import metrics
from facd.metrics import (
    SSIM_C1,
    SSIM_C2,
    SSIM_STRIP,
    gaussian_window_1d,
    psnr_ssim_y,
    psnr_y,
    ssim_map,
    ssim_y,
)


def plain_filter(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    k = len(g)
    h, w = img.shape[0] - k + 1, img.shape[1] - k + 1
    rows = sum(g[i] * img[i : i + h, :] for i in range(k))
    return sum(g[j] * rows[:, j : j + w] for j in range(k))


def plain_ssim_map(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    g = gaussian_window_1d()
    mu1, mu2 = plain_filter(x, g), plain_filter(y, g)
    s11 = plain_filter(x * x, g) - mu1 * mu1
    s22 = plain_filter(y * y, g) - mu2 * mu2
    s12 = plain_filter(x * y, g) - mu1 * mu2
    num = (2.0 * mu1 * mu2 + SSIM_C1) * (2.0 * s12 + SSIM_C2)
    den = (mu1 * mu1 + mu2 * mu2 + SSIM_C1) * (s11 + s22 + SSIM_C2)
    return num / den


def test_strips_give_the_whole_plane_map_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    rows = 3 * SSIM_STRIP + 17  # several strips and a short last one
    x = rng.integers(0, 256, (rows, 61)).astype(np.float64)
    y = np.clip(x + rng.normal(0, 9, x.shape), 0, 255)
    got, want = ssim_map(x, y), plain_ssim_map(x, y)
    assert got.shape == want.shape == (rows - 10, 51)
    assert np.array_equal(got, want)


def test_a_plane_shorter_than_one_strip() -> None:
    rng = np.random.default_rng(4)
    x = rng.random((12, 40)) * 255
    y = rng.random((12, 40)) * 255
    assert np.array_equal(ssim_map(x, y), plain_ssim_map(x, y))


def test_psnr_and_ssim_together_equal_each_alone() -> None:
    rng = np.random.default_rng(5)
    hr = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-5, 6, hr.shape), 0, 255).astype(np.uint8)
    assert psnr_ssim_y(sr, hr, 4) == (psnr_y(sr, hr, 4), ssim_y(sr, hr, 4))
    gray = hr[..., 0]
    assert psnr_ssim_y(sr, gray, 2) == (psnr_y(sr, gray, 2), ssim_y(sr, gray, 2))
    assert psnr_ssim_y(hr, hr, 4)[0] == float("inf")


def test_the_strip_size_does_not_change_the_map(monkeypatch) -> None:
    rng = np.random.default_rng(6)
    x, y = rng.random((50, 30)) * 255, rng.random((50, 30)) * 255
    want = ssim_map(x, y)
    for strip in (1, 7, 1000):
        monkeypatch.setattr(metrics, "SSIM_STRIP", strip)
        assert np.array_equal(ssim_map(x, y), want)
