"""PSNR and SSIM as super-resolution papers report them (MATLAB parity).

Conventions (shared by the numpy functions and their torch twins):

* **Quantisation.** The SR output is quantised to uint8 before measuring. Float inputs in
  [0, 1] are clamped and mapped with ``round(x * 255)``, rounding half to even (``np.round`` /
  ``torch.round``), computed in the input's float dtype (float16/bfloat16 are first widened to
  float32). uint8 inputs are used as they are. HR images given as floats are quantised the same way.
* **Y channel.** ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for R, G, B in 0..255,
  i.e. MATLAB ``rgb2ycbcr`` on ``im2double`` input, scaled back to 0..255 (Y in [16, 235]).
  Computed in float64 and **not** rounded, like BasicSR's ``bgr2ycbcr(..., y_only=True)`` on
  float input and the MATLAB evaluation scripts behind the published tables.
* **Shave.** ``shave`` pixels are removed from every border before measuring (usually the scale).
* **PSNR.** ``10 log10(255^2 / MSE)`` in float64; identical planes give ``inf``.
* **SSIM.** MATLAB ``ssim_index`` (Wang et al. 2004) on the 0..255 plane: 11x11 Gaussian window,
  sigma 1.5, normalised to sum 1 (``fspecial('gaussian', 11, 1.5)``), ``C1 = (0.01*255)^2``,
  ``C2 = (0.03*255)^2``, 'valid' filtering (the map is 10 px smaller in each dimension), and the
  mean of the map. Variances are ``E[x^2] - E[x]^2`` under the window, as in MATLAB.
* **Single-channel HR** (``gray``). Some benchmark HR images are stored with one channel (Set14
  ``bridge.png``). The published MATLAB numbers measure them on their own grey values:

  - ``gray="native"`` (default): HR grey as stored; an RGB SR output is turned to grey with
    MATLAB ``rgb2gray`` on uint8 input (coefficients = first row of the inverse NTSC matrix,
    about 0.298936, 0.587043, 0.114021; the result rounded half away from zero to uint8, as
    MATLAB does). A single-channel SR output is used as it is. No Y offset or 219/255 scaling.
  - ``gray="y"``: HR grey is replicated to RGB and both images are measured on Y. For a grey
    image pair this scales all errors by 219/255, so PSNR is higher by 20 log10(255/219) ~ 1.32 dB.

  RGB images with R = G = B are ordinary RGB images and are always measured on Y.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from facd.errors import FacdError

GrayMode = Literal["native", "y"]

#: MATLAB rgb2ycbcr luma weights for R, G, B in [0, 1], output on the 0..255 scale.
Y_WEIGHTS = (65.481, 128.553, 24.966)
#: MATLAB rgb2gray weights: first row of inv of the NTSC (YIQ -> RGB) matrix.
GRAY_WEIGHTS = tuple(
    float(v)
    for v in np.linalg.inv(
        np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]])
    )[0]
)
SSIM_WIN = 11
SSIM_SIGMA = 1.5
SSIM_C1 = (0.01 * 255.0) ** 2
SSIM_C2 = (0.03 * 255.0) ** 2
#: Output rows of the SSIM map computed at a time. Every value is computed as over the whole
#: plane (filtering is per pixel); strips only keep the intermediate planes in the CPU cache
#: (2.6x faster on a 1000 x 800 plane than whole planes).
SSIM_STRIP = 32


def gaussian_window_1d(size: int = SSIM_WIN, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian; its outer product is ``fspecial('gaussian', size, sigma)``."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _check_gray(gray: str) -> None:
    if gray not in ("native", "y"):
        raise FacdError(f"gray must be 'native' or 'y', got {gray!r}")


def _check_shave(shave: int, h: int, w: int) -> None:
    if not isinstance(shave, (int, np.integer)) or isinstance(shave, bool) or shave < 0:
        raise FacdError(f"shave must be a non-negative integer, got {shave!r}")
    if 2 * shave >= min(h, w):
        raise FacdError(f"shave={shave} leaves nothing of a {h}x{w} image")


# ----------------------------------------------------------------------------- numpy


def quantize(img: np.ndarray) -> np.ndarray:
    """uint8 passes through; float in [0, 1] -> clip, ``round(x*255)`` half to even -> uint8."""
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img
    if not np.issubdtype(img.dtype, np.floating):
        raise FacdError(f"expected a uint8 or float image, got dtype {img.dtype}")
    if img.dtype == np.float16:
        img = img.astype(np.float32)
    return np.round(np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)


def _as_image(img: np.ndarray, what: str) -> np.ndarray:
    img = quantize(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3):
        return img
    raise FacdError(f"{what} must be HxW or HxWx3, got shape {tuple(img.shape)}")


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """HxWx3 RGB (uint8, or float in [0, 1]) -> float64 HxW Y in [16, 235], not rounded."""
    img = _as_image(img, "image")
    if img.ndim != 3:
        raise FacdError(f"rgb_to_y needs an HxWx3 image, got shape {tuple(img.shape)}")
    return img.astype(np.float64) @ np.array(Y_WEIGHTS) / 255.0 + 16.0


def rgb_to_gray(img: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray`` on uint8: weighted sum rounded half away from zero -> float64 HxW."""
    img = _as_image(img, "image")
    if img.ndim != 3:
        raise FacdError(f"rgb_to_gray needs an HxWx3 image, got shape {tuple(img.shape)}")
    g = img.astype(np.float64) @ np.array(GRAY_WEIGHTS)
    return np.clip(np.floor(g + 0.5), 0.0, 255.0)


def _replicate(img: np.ndarray) -> np.ndarray:
    """HxW grey -> HxWx3 with R = G = B; RGB passes through."""
    return img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)


def to_measurement_plane(
    sr: np.ndarray, hr: np.ndarray, gray: GrayMode = "native"
) -> tuple[np.ndarray, np.ndarray]:
    """Quantise and return the float64 (sr, hr) planes (0..255) that PSNR/SSIM compare.

    RGB HR -> Y of both. Single-channel HR -> grey values (``gray="native"``) or Y of the
    replicated image (``gray="y"``); see the module docstring.
    """
    _check_gray(gray)
    sr = _as_image(sr, "SR image")
    hr = _as_image(hr, "HR image")
    if sr.shape[:2] != hr.shape[:2]:
        raise FacdError(f"SR is {sr.shape[0]}x{sr.shape[1]} but HR is {hr.shape[0]}x{hr.shape[1]}")
    if sr.ndim == 2 and hr.ndim == 3:
        raise FacdError("SR image is single-channel but HR image is RGB")
    if hr.ndim == 3:
        return rgb_to_y(sr), rgb_to_y(hr)
    if gray == "native":
        sr_plane = sr.astype(np.float64) if sr.ndim == 2 else rgb_to_gray(sr)
        return sr_plane, hr.astype(np.float64)
    return rgb_to_y(_replicate(sr)), rgb_to_y(_replicate(hr))


def _shaved(sr: np.ndarray, hr: np.ndarray, shave: int, gray: GrayMode):
    a, b = to_measurement_plane(sr, hr, gray)
    _check_shave(shave, *a.shape)
    if shave:
        a, b = a[shave:-shave, shave:-shave], b[shave:-shave, shave:-shave]
    return a, b


def psnr_y(sr: np.ndarray, hr: np.ndarray, shave: int, gray: GrayMode = "native") -> float:
    """PSNR in dB on Y (or grey, see ``gray``) after quantisation and shaving; inf if equal."""
    a, b = _shaved(sr, hr, shave, gray)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse)


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """'valid' 2-D correlation with the separable window ``outer(g, g)`` (two 1-D passes).

    Each pass is ``((g0 s0 + g1 s1) + g2 s2) + ...`` over the shifted slices ``s_i``, summed in
    place into one buffer with one scratch buffer: the same operations in the same order as a
    plain ``sum`` of the terms, so the same bits, without a temporary per term.
    """
    k = len(g)
    h, w = img.shape[0] - k + 1, img.shape[1] - k + 1
    rows = _weighted_sum([img[i : i + h, :] for i in range(k)], g)
    return _weighted_sum([rows[:, j : j + w] for j in range(k)], g)


def _weighted_sum(slices: list[np.ndarray], g: np.ndarray) -> np.ndarray:
    """``g[0] * slices[0] + g[1] * slices[1] + ...``, left to right, in place."""
    acc = np.multiply(slices[0], g[0])
    term = np.empty_like(acc)
    for weight, part in zip(g[1:], slices[1:], strict=True):
        np.multiply(part, weight, out=term)
        acc += term
    return acc


def ssim_map(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """MATLAB ``ssim_index`` map of two float 0..255 planes; shape (H-10, W-10)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise FacdError(f"ssim_map needs two equal 2-D planes, got {x.shape} and {y.shape}")
    if min(x.shape) < SSIM_WIN:
        raise FacdError(f"SSIM needs at least {SSIM_WIN}x{SSIM_WIN} pixels, got {x.shape}")
    g = gaussian_window_1d()
    rows = x.shape[0] - SSIM_WIN + 1
    out = np.empty((rows, x.shape[1] - SSIM_WIN + 1))
    for top in range(0, rows, SSIM_STRIP):  # strips that stay in cache: the same values
        bottom = top + SSIM_STRIP + SSIM_WIN - 1
        out[top : top + SSIM_STRIP] = _ssim_strip(x[top:bottom], y[top:bottom], g)
    return out


def _ssim_strip(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The SSIM map of full-width planes (the rows their 'valid' window covers)."""
    mu1, mu2 = _filter_valid(x, g), _filter_valid(y, g)
    s11 = _filter_valid(x * x, g) - mu1 * mu1
    s22 = _filter_valid(y * y, g) - mu2 * mu2
    s12 = _filter_valid(x * y, g) - mu1 * mu2
    num = (2.0 * mu1 * mu2 + SSIM_C1) * (2.0 * s12 + SSIM_C2)
    den = (mu1 * mu1 + mu2 * mu2 + SSIM_C1) * (s11 + s22 + SSIM_C2)
    return num / den


def ssim_y(sr: np.ndarray, hr: np.ndarray, shave: int, gray: GrayMode = "native") -> float:
    """Mean SSIM (MATLAB ``ssim_index``) on Y (or grey) after quantisation and shaving."""
    a, b = _shaved(sr, hr, shave, gray)
    return float(ssim_map(a, b).mean())


def psnr_ssim_y(
    sr: np.ndarray, hr: np.ndarray, shave: int, gray: GrayMode = "native"
) -> tuple[float, float]:
    """``(psnr_y, ssim_y)`` of one pair, the measured planes computed once (the same values)."""
    a, b = _shaved(sr, hr, shave, gray)
    mse = float(np.mean((a - b) ** 2))
    psnr = math.inf if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse)
    return psnr, float(ssim_map(a, b).mean())


METRICS: dict[str, Callable[..., float]] = {"psnr_y": psnr_y, "ssim_y": ssim_y}


# ----------------------------------------------------------------------------- torch


def quantize_torch(x: Tensor) -> Tensor:
    """uint8 passes through; float in [0, 1] -> clamp, ``round(x*255)`` half to even -> float64."""
    if x.dtype == torch.uint8:
        return x.double()
    if not x.is_floating_point():
        raise FacdError(f"expected a uint8 or float tensor, got dtype {x.dtype}")
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    return (x.clamp(0.0, 1.0) * 255).round().double()


def _y_torch(x: Tensor) -> Tensor:
    """(B, 3, H, W) float64 quantised RGB in 0..255 -> (B, H, W) Y, unrounded."""
    w = torch.tensor(Y_WEIGHTS, dtype=torch.float64, device=x.device)
    return torch.einsum("bchw,c->bhw", x, w) / 255.0 + 16.0


def _gray_torch(x: Tensor) -> Tensor:
    """(B, 3, H, W) float64 quantised RGB -> (B, H, W) MATLAB rgb2gray, rounded half up."""
    w = torch.tensor(GRAY_WEIGHTS, dtype=torch.float64, device=x.device)
    return torch.floor(torch.einsum("bchw,c->bhw", x, w) + 0.5).clamp(0.0, 255.0)


def _planes_torch(
    sr: Tensor, hr: Tensor, shave: int, hr_is_gray: Tensor | bool, gray: GrayMode
) -> tuple[Tensor, Tensor]:
    _check_gray(gray)
    if sr.dim() != 4 or hr.dim() != 4:
        shapes = f"{tuple(sr.shape)} and {tuple(hr.shape)}"
        raise FacdError(f"expected (B, C, H, W) tensors, got {shapes}")
    if sr.shape[0] != hr.shape[0] or sr.shape[2:] != hr.shape[2:]:
        raise FacdError(f"SR {tuple(sr.shape)} and HR {tuple(hr.shape)} differ in batch or size")
    if sr.shape[1] not in (1, 3) or hr.shape[1] not in (1, 3):
        raise FacdError(f"expected 1 or 3 channels, got {sr.shape[1]} (SR) and {hr.shape[1]} (HR)")
    _check_shave(shave, *sr.shape[2:])
    b = sr.shape[0]
    mask = torch.as_tensor(hr_is_gray, dtype=torch.bool, device=sr.device).reshape(-1)
    mask = mask.expand(b) if mask.numel() == 1 else mask
    if mask.numel() != b:
        raise FacdError(f"hr_is_gray has {mask.numel()} entries for a batch of {b}")
    if hr.shape[1] == 1:
        mask = torch.ones_like(mask)
    if sr.shape[1] == 1 and not bool(mask.all()):
        raise FacdError("SR is single-channel but some HR images are RGB")
    sq, hq = quantize_torch(sr), quantize_torch(hr.to(sr.device))
    a, c = _y_torch(sq.expand(-1, 3, -1, -1)), _y_torch(hq.expand(-1, 3, -1, -1))
    if gray == "native" and bool(mask.any()):
        ga = sq[:, 0] if sq.shape[1] == 1 else _gray_torch(sq)
        m = mask.view(-1, 1, 1)
        a, c = torch.where(m, ga, a), torch.where(m, hq[:, 0], c)
    if shave:
        a, c = a[:, shave:-shave, shave:-shave], c[:, shave:-shave, shave:-shave]
    return a, c


def psnr_y_torch(
    sr: Tensor,
    hr: Tensor,
    shave: int,
    hr_is_gray: Tensor | bool = False,
    gray: GrayMode = "native",
) -> Tensor:
    """Per-image PSNR (float64, shape [B]) of (B, C, H, W) images; twin of :func:`psnr_y`.

    ``hr_is_gray`` (bool or [B] bool tensor) marks HR images that are single-channel at heart
    (stored replicated in a 3-channel batch); a 1-channel HR tensor is always grey. For those
    images ``gray`` applies as in :func:`to_measurement_plane`, using channel 0 of HR.
    """
    a, c = _planes_torch(sr, hr, shave, hr_is_gray, gray)
    mse = (a - c).pow(2).mean(dim=(1, 2))
    return 10.0 * torch.log10(255.0**2 / mse)  # mse == 0 -> inf


def _filter_valid_torch(x: Tensor) -> Tensor:
    """'valid' correlation of (..., H, W) float64 with the separable SSIM window.

    Two 1-D passes of shifted, weighted slices, the same arithmetic as the numpy twin; on CPU
    this is faster than float64 ``F.conv2d`` and runs on any device.
    """
    g = gaussian_window_1d().tolist()
    k = len(g)
    h, w = x.shape[-2] - k + 1, x.shape[-1] - k + 1
    rows = sum(g[i] * x[..., i : i + h, :] for i in range(k))
    return sum(g[j] * rows[..., j : j + w] for j in range(k))


def ssim_map_torch(x: Tensor, y: Tensor) -> Tensor:
    """Batched MATLAB ``ssim_index`` map of (B, H, W) float64 planes -> (B, H-10, W-10)."""
    if min(x.shape[-2:]) < SSIM_WIN:
        raise FacdError(f"SSIM needs at least {SSIM_WIN}x{SSIM_WIN} pixels, got {tuple(x.shape)}")
    b = x.shape[0]
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=0)
    mu1, mu2, e11, e22, e12 = _filter_valid_torch(stack).split(b, dim=0)
    s11, s22, s12 = e11 - mu1 * mu1, e22 - mu2 * mu2, e12 - mu1 * mu2
    num = (2.0 * mu1 * mu2 + SSIM_C1) * (2.0 * s12 + SSIM_C2)
    den = (mu1 * mu1 + mu2 * mu2 + SSIM_C1) * (s11 + s22 + SSIM_C2)
    return num / den


def ssim_y_torch(
    sr: Tensor,
    hr: Tensor,
    shave: int,
    hr_is_gray: Tensor | bool = False,
    gray: GrayMode = "native",
) -> Tensor:
    """Per-image SSIM (float64, shape [B]); twin of :func:`ssim_y`, arguments as in PSNR."""
    a, c = _planes_torch(sr, hr, shave, hr_is_gray, gray)
    return ssim_map_torch(a, c).mean(dim=(1, 2))


TORCH_METRICS: dict[str, Callable[..., Tensor]] = {
    "psnr_y": psnr_y_torch,
    "ssim_y": ssim_y_torch,
}

__all__ = [
    "GRAY_WEIGHTS",
    "METRICS",
    "TORCH_METRICS",
    "Y_WEIGHTS",
    "gaussian_window_1d",
    "psnr_ssim_y",
    "psnr_y",
    "psnr_y_torch",
    "quantize",
    "quantize_torch",
    "rgb_to_gray",
    "rgb_to_y",
    "ssim_map",
    "ssim_map_torch",
    "ssim_y",
    "ssim_y_torch",
    "to_measurement_plane",
]
