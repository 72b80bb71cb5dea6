"""MATLAB-exact bicubic resizing (``imresize(..., 'bicubic')``) in numpy.

Conventions, all as in MATLAB's ``imresize``:

* Keys cubic kernel with a = -0.5; when downscaling (scale < 1) the kernel is widened by
  1/scale (antialiasing), so it covers 4/scale input pixels.
* Output pixel x (1-based) samples input position ``u = x / scale + 0.5 * (1 - 1 / scale)``.
* Borders are padded symmetrically (mirror, edge pixel repeated) by reflecting indices.
* Weights of each output pixel are normalised to sum to 1; taps that are zero for every output
  pixel are dropped.
* Axes are resized one after the other, the one with the smallest scale first (axis 0 first on
  ties, i.e. for a uniform scale).
* uint8 images: each pass is computed in float64 and its result is rounded half up and clipped
  to 0..255 (MATLAB stores the intermediate in the input class). This intermediate rounding is
  needed to reproduce MATLAB-made LR images bit for bit.
* Float images: float64 computation, no rounding or clipping; the result has the input dtype.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from facd.errors import DataError

__all__ = [
    "bicubic_downsample",
    "bicubic_upsample",
    "contributions",
    "cubic",
    "imresize",
    "modcrop",
]

_KERNEL_WIDTH = 4.0


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    inner = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    outer = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return inner + outer


@lru_cache(maxsize=256)
def contributions(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-axis weights and 0-based input indices, both of shape (out_len, taps).

    Output pixel ``i`` is ``sum_k weights[i, k] * input[indices[i, k]]``. The arrays are cached
    and read-only.
    """
    # Antialiasing when shrinking: h(x) = scale * cubic(scale * x), kernel widened by 1/scale.
    width = _KERNEL_WIDTH / scale if scale < 1 else _KERNEL_WIDTH
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based positions
    dist = u[:, None] - idx
    weights = scale * cubic(scale * dist) if scale < 1 else cubic(dist)
    weights = weights / weights.sum(axis=1, keepdims=True)
    # Mirror padding: reflect 1-based positions into [1, in_len] (period 2 * in_len).
    aux = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    indices = aux[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(weights != 0, axis=0)
    weights = np.ascontiguousarray(weights[:, keep])
    indices = np.ascontiguousarray(indices[:, keep])
    weights.setflags(write=False)
    indices.setflags(write=False)
    return weights, indices


_CHUNK_VALUES = 1 << 16  # float64 values per working buffer (512 KiB): keeps them in cache


def _resize_axis0(
    src: np.ndarray, weights: np.ndarray, indices: np.ndarray, to_uint8: bool
) -> np.ndarray:
    """Resize along axis 0 in float64, one block of output rows at a time.

    Each output value is accumulated tap by tap, in tap order (``acc += w_k * x_k``), with no
    fused multiply-add, so results do not depend on the block size. With ``to_uint8`` each block
    is rounded half up and clipped to uint8; otherwise the float64 result is returned.
    """
    n_out, taps = weights.shape
    flat = src.reshape(src.shape[0], -1)
    width = flat.shape[1]
    out = np.empty((n_out, width), dtype=np.uint8 if to_uint8 else np.float64)
    block = max(1, min(n_out, _CHUNK_VALUES // max(width, 1)))
    acc_buf = np.empty((block, width), dtype=np.float64)
    tmp_buf = np.empty((block, width), dtype=np.float64)
    gather_buf = np.empty((block, width), dtype=flat.dtype)
    for start in range(0, n_out, block):
        stop = min(start + block, n_out)
        n = stop - start
        acc, tmp, gathered = acc_buf[:n], tmp_buf[:n], gather_buf[:n]
        w, idx = weights[start:stop], indices[start:stop]
        np.take(flat, idx[:, 0], axis=0, out=gathered)
        np.multiply(gathered, w[:, 0:1], out=acc)
        for k in range(1, taps):
            np.take(flat, idx[:, k], axis=0, out=gathered)
            np.multiply(gathered, w[:, k : k + 1], out=tmp)
            np.add(acc, tmp, out=acc)
        if to_uint8:  # MATLAB rounds half away from zero; negatives clip to 0 anyway
            np.add(acc, 0.5, out=acc)
            np.floor(acc, out=acc)
            np.clip(acc, 0, 255, out=acc)
        out[start:stop] = acc
    return out.reshape((n_out,) + src.shape[1:])


def _resize_axis(
    x: np.ndarray, axis: int, out_len: int, scale: float, to_uint8: bool
) -> np.ndarray:
    """Resize ``x`` along ``axis`` (0 or 1); axis 1 is moved to the front and back."""
    weights, indices = contributions(x.shape[axis], out_len, scale)
    if axis == 0:
        return _resize_axis0(x, weights, indices, to_uint8)
    moved = np.ascontiguousarray(np.swapaxes(x, 0, 1))
    return np.ascontiguousarray(np.swapaxes(_resize_axis0(moved, weights, indices, to_uint8), 0, 1))


def _ceil_size(n: int, scale: float) -> int:
    """``ceil(n * scale)`` tolerant to float error (e.g. 255 * (1/3) must give 85)."""
    value = n * scale
    nearest = round(value)
    return int(nearest) if abs(value - nearest) < 1e-9 * max(1.0, value) else math.ceil(value)


def imresize(
    img: np.ndarray,
    scale: float | None = None,
    output_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Resize like MATLAB ``imresize(img, scale | output_shape, 'bicubic')``.

    ``img`` is HxW or HxWxC, uint8 or floating point. Give ``scale`` (same for both axes; output
    size ``ceil(scale * size)``), ``output_shape`` (H, W) (per-axis scale ``out / in``), or both
    (the given scale with the given output size). See the module docstring for the conventions.
    """
    img = np.asarray(img)
    if img.ndim not in (2, 3) or img.shape[0] == 0 or img.shape[1] == 0:
        raise DataError(f"imresize expects a non-empty HxW or HxWxC image, got shape {img.shape}")
    is_uint8 = img.dtype == np.uint8
    if not is_uint8 and not np.issubdtype(img.dtype, np.floating):
        raise DataError(f"imresize supports uint8 or floating-point images, got {img.dtype}")
    in_shape = img.shape[:2]
    if scale is None and output_shape is None:
        raise ValueError("imresize needs scale or output_shape")
    if scale is not None:
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"scale must be a positive finite number, got {scale}")
        scales = (float(scale), float(scale))
    if output_shape is None:
        out_shape = (_ceil_size(in_shape[0], scales[0]), _ceil_size(in_shape[1], scales[1]))
    else:
        out_shape = (int(output_shape[0]), int(output_shape[1]))
        if min(out_shape) < 1:
            raise ValueError(f"output_shape must be positive, got {output_shape}")
        if scale is None:
            scales = (out_shape[0] / in_shape[0], out_shape[1] / in_shape[1])
    if min(out_shape) < 1:
        raise DataError(f"image of size {in_shape[0]}x{in_shape[1]} is too small for scale {scale}")

    order = sorted((0, 1), key=lambda a: scales[a])  # stable: axis 0 first on ties
    out: np.ndarray = img if is_uint8 else img.astype(np.float64, copy=False)
    for axis in order:
        out = _resize_axis(out, axis, out_shape[axis], scales[axis], is_uint8)
    return out if is_uint8 else out.astype(img.dtype, copy=False)


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom and right edges so that height and width are multiples of ``scale``."""
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    scale = int(scale)
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def bicubic_downsample(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB ``imresize(modcrop(hr, scale), 1/scale, 'bicubic')``: the standard SR LR input.

    The result is floor(H/scale) x floor(W/scale) with the input's dtype (normally uint8).
    """
    cropped = modcrop(hr, scale)
    if cropped.shape[0] == 0 or cropped.shape[1] == 0:
        h, w = hr.shape[:2]
        raise DataError(f"image of size {w}x{h} is smaller than the scale factor {scale}")
    h, w = cropped.shape[:2]
    return imresize(cropped, 1.0 / scale, output_shape=(h // scale, w // scale))


def bicubic_upsample(lr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB ``imresize(lr, scale, 'bicubic')``: the bicubic baseline (same dtype out)."""
    h, w = lr.shape[:2]
    return imresize(lr, float(scale), output_shape=(h * scale, w * scale))
