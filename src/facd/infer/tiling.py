"""Overlapping tiles whose outputs are cropped to their cores, and the receptive-field margin.

The LR image is split into a grid of nearly equal *cores* of at most ``tile`` x ``tile`` LR
pixels. Each core is run inside a *window* with at least ``overlap`` extra LR pixels of context
on every side that is not an image border (all windows of an image have one shape); the
network output of the window is cropped back to the core and written into a preallocated
output. Peak memory is therefore bounded by the window size, whatever the image size.

Two levels. Most of an SR network's activation memory sits in its *tail* (upsampler and last
conv), whose feature maps are ``scale^2`` times larger than the LR body's. The upscaler
therefore runs the body on large windows (few tiles, little overlap overhead) and the tail on
sub-tiles of the body's features (:func:`tail_margin` is their exact overlap, 2 LR pixels), so
memory stays bounded while the overlap costs little compute.

Exactness. Every 3x3 convolution widens the set of input pixels an output pixel depends on by
one pixel at its own resolution. When that set stays inside the window, the cropped output is
*bit-for-bit the computation of the whole image* (up to float reordering), because a window side
that is not an image border is never reached, and a side that is an image border sees the same
zero padding as the whole image. :func:`receptive_margin` gives the smallest such overlap for
EDSR. RCAN's channel attention averages each feature map over the *whole input*, so any RCAN
tile sees slightly different attention weights than the whole image: RCAN tiles are never
exact, whatever the overlap (see docs/inference.md for measured differences). SwinIR lays its
attention windows out from each tile's corner, so its tiles are approximate too, held to a
declared tolerance at a declared margin. Each architecture declares which case it is
(:class:`facd.archs.registry.Tiling`); the functions here read the declaration.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from facd.archs.common import SRFamily
from facd.archs.registry import Tiling
from facd.archs.spec import ArchSpec
from facd.errors import FacdError, NonFiniteOutputError

__all__ = [
    "DEFAULT_OVERLAP",
    "DEFAULT_TAIL_TILE_OUTPUT",
    "DEFAULT_TILE_64",
    "NonFiniteOutputError",
    "Tile",
    "conv_layers",
    "default_tail_tile",
    "default_tile",
    "is_out_of_memory",
    "receptive_margin",
    "split_axis",
    "tail_margin",
    "tile_grid",
    "tiled_forward",
    "tiling_info",
    "tiling_is_exact",
]

#: Default body tile core size in LR pixels for a 64-channel network; scaled by
#: ``sqrt(64 / n_feats)`` so that a window's body features take about the same memory for
#: any width (512 for edsr-s/rcan-s, 256 for the 256-channel EDSR teacher).
DEFAULT_TILE_64 = 512
#: Default context on each inner side, in LR pixels.
DEFAULT_OVERLAP = 16
#: Default tail sub-tile in *output* pixels (128 LR pixels at x4, 256 at x2).
DEFAULT_TAIL_TILE_OUTPUT = 512


def default_tile(spec: ArchSpec) -> int:
    """The default body tile core size in LR pixels (a multiple of 8), from the declaration:
    512 for 64-channel EDSR/RCAN, scaled by ``sqrt(64 / n_feats)``; 256 for SwinIR-S."""
    return spec.declaration.default_tile(spec)


def default_tail_tile(scale: int) -> int:
    """The default tail sub-tile core size in LR pixels."""
    return max(16, DEFAULT_TAIL_TILE_OUTPUT // scale)


#: Lower-case fragments of the messages torch raises when an allocation fails.
_OOM_MESSAGES = (
    "out of memory",  # CUDA, MPS
    "not enough memory",  # CPU allocator on Linux/Windows
    "can't allocate memory",  # DefaultCPUAllocator
)


def is_out_of_memory(err: BaseException) -> bool:
    """True for torch's (and Python's) out-of-memory errors, on CPU and GPU.

    torch raises ``torch.OutOfMemoryError`` on CUDA but a plain ``RuntimeError`` from its CPU
    allocator (``DefaultCPUAllocator: can't allocate memory`` / ``not enough memory``).
    """
    oom_type = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(err, (MemoryError, oom_type)):
        return True
    return isinstance(err, RuntimeError) and any(m in str(err).lower() for m in _OOM_MESSAGES)


Forward = Callable[[Tensor], Tensor]
Writer = Callable[[int, int, Tensor], None]


def conv_layers(spec: ArchSpec) -> tuple[int, list[int]]:
    """(number of 3x3 convs at LR resolution, upsampling factors of the pixel-shuffle stages)
    of an EDSR/RCAN (see :meth:`facd.archs.common.SRFamily.conv_layers`)."""
    decl = spec.declaration
    if not isinstance(decl, SRFamily):
        raise FacdError(f"{spec.arch} is not a convolutional EDSR/RCAN network")
    return decl.conv_layers(spec)


def receptive_margin(spec: ArchSpec) -> int:
    """The declared tile overlap (LR pixels): for EDSR the smallest one whose tiles reproduce
    the whole-image output; for RCAN the margin of its convolutions (its global channel
    attention makes tiles inexact anyway); for SwinIR the recommended overlap (approximate)."""
    return spec.declaration.tiling(spec).margin


def tail_margin(spec: ArchSpec) -> int | None:
    """Exact overlap (LR pixels) for tiling the tail alone: the upsampler's first conv at LR
    and the convs after each pixel shuffle (2 for every scale); None where the architecture
    has no separate tail (SwinIR)."""
    return spec.declaration.tiling(spec).tail_margin


def tiling_info(spec: ArchSpec) -> Tiling:
    """Whether tiling is exact, its margin, tolerance and reason, as declared."""
    return spec.declaration.tiling(spec)


def tiling_is_exact(spec: ArchSpec, overlap: int) -> bool:
    """True where tiles with this overlap reproduce the whole-image output (EDSR only)."""
    info = spec.declaration.tiling(spec)
    return info.exact and overlap >= info.margin


@dataclass(frozen=True)
class Tile:
    """One tile in LR pixels: the window that is computed and the core that is kept.

    Ranges are half-open, ``(y0, y1, x0, x1)``; the core lies inside the window.
    """

    window: tuple[int, int, int, int]
    core: tuple[int, int, int, int]

    @property
    def shape(self) -> tuple[int, int]:
        y0, y1, x0, x1 = self.window
        return y1 - y0, x1 - x0

    def core_in_window(self, scale: int) -> tuple[slice, slice]:
        """Slices that crop the window's output (at ``scale``) to the core."""
        wy0, _, wx0, _ = self.window
        cy0, cy1, cx0, cx1 = self.core
        return (
            slice((cy0 - wy0) * scale, (cy1 - wy0) * scale),
            slice((cx0 - wx0) * scale, (cx1 - wx0) * scale),
        )


def split_axis(
    length: int, tile: int, overlap: int, align: int = 1
) -> list[tuple[int, int, int, int]]:
    """Split one axis into ``ceil(length / tile)`` nearly equal cores with equal windows.

    Returns ``(core0, core1, win0, win1)`` per tile. Every window has the same length,
    ``min(largest core + 2 * overlap, length)`` (``+ overlap`` for two tiles), holding its core
    and at least ``overlap`` pixels on each side that is not an image border: windows at the
    borders are shifted inwards rather than cut, so all tiles share one shape (one set of
    convolution kernels, batchable, steady memory) for a little more context at the borders.
    ``tile <= 0`` or ``tile >= length`` gives one tile.
    """
    if length < 1:
        raise FacdError(f"cannot tile an axis of length {length}")
    if overlap < 0:
        raise FacdError(f"tile overlap must be >= 0, got {overlap}")
    if tile <= 0 or tile >= length:
        return [(0, length, 0, length)]
    if align > 1:
        return _split_aligned(length, tile, overlap, align)
    n = math.ceil(length / tile)
    size = math.ceil(length / n)
    # inner tiles need context on both sides; with two tiles each needs it on one side only
    win = min(size + (2 if n > 2 else 1) * overlap, length)
    out = []
    for i in range(n):
        c0, c1 = i * size, min((i + 1) * size, length)
        w0 = min(max(c0 - overlap, 0), length - win)
        out.append((c0, c1, w0, w0 + win))
    return out


def _split_aligned(
    length: int, tile: int, overlap: int, align: int
) -> list[tuple[int, int, int, int]]:
    """Cores and windows that start on multiples of ``align`` (a transformer's attention
    window), so each tile partitions its windows like the whole image does; a window ends at
    a multiple of ``align`` or at the image border (border tiles may be smaller)."""
    size = max(align, tile // align * align)
    out = []
    for c0 in range(0, length, size):
        c1 = min(c0 + size, length)
        w0 = max(c0 - overlap, 0) // align * align
        w1 = min(-(-(c1 + overlap) // align) * align, length)
        out.append((c0, c1, w0, w1))
    return out


def tile_grid(height: int, width: int, tile: int, overlap: int, align: int = 1) -> list[Tile]:
    """All tiles of an ``height`` x ``width`` LR image, row by row."""
    rows = split_axis(height, tile, overlap, align)
    cols = split_axis(width, tile, overlap, align)
    return [
        Tile(window=(wy0, wy1, wx0, wx1), core=(cy0, cy1, cx0, cx1))
        for cy0, cy1, wy0, wy1 in rows
        for cx0, cx1, wx0, wx1 in cols
    ]


def _batches(tiles: list[Tile], batch: int) -> Iterator[list[Tile]]:
    """Tiles grouped by window shape (so they stack), in chunks of at most ``batch``."""
    groups: dict[tuple[int, int], list[Tile]] = {}
    for t in tiles:
        groups.setdefault(t.shape, []).append(t)
    for group in groups.values():
        for i in range(0, len(group), batch):
            yield group[i : i + batch]


def all_finite(t: Tensor) -> bool:
    """Whether ``t`` holds no NaN and no infinity: one pass (min and max; a NaN makes both NaN),
    no boolean tensor of ``t``'s size."""
    lo, hi = torch.aminmax(t)
    return bool(torch.isfinite(lo)) and bool(torch.isfinite(hi))


def tiled_forward(
    forward: Forward,
    lr: Tensor,
    scale: int,
    write: Writer,
    *,
    tile: int,
    overlap: int = DEFAULT_OVERLAP,
    batch: int = 1,
    on_tile: Callable[[int], None] | None = None,
    align: int = 1,
    check_finite: bool = True,
) -> int:
    """Run ``forward`` over the tiles of ``lr`` and pass each cropped core to ``write``.

    ``lr`` is (C, H, W) or (1, C, H, W); windows are sliced from it and handed to ``forward``
    as (B, C, h, w) batches of equal shape. ``forward`` must return (B, C', h*scale, w*scale).
    ``write(y, x, block)`` receives each core's output (C', hc*scale, wc*scale) and its top-left
    corner in output pixels. ``on_tile(n)`` is called after each batch of ``n`` tiles.
    ``align`` > 1 starts every tile on a multiple of it (see :func:`split_axis`).
    ``tile=0`` runs the whole image at once. Returns the number of tiles.

    Raises :class:`NonFiniteOutputError` as soon as an output holds NaN or infinity: clamping
    and quantising would otherwise turn it into a plausible-looking black image
    (``check_finite=False``: the caller checks what ``write`` assembled).
    """
    if lr.dim() == 4:
        if lr.shape[0] != 1:
            raise FacdError(f"tiled_forward takes one image, got a batch of {lr.shape[0]}")
        lr = lr[0]
    if lr.dim() != 3:
        raise FacdError(f"expected a (C, H, W) image, got shape {tuple(lr.shape)}")
    if batch < 1:
        raise FacdError(f"tile batch must be >= 1, got {batch}")
    _, h, w = lr.shape
    tiles = tile_grid(h, w, tile, overlap, align)
    for group in _batches(tiles, batch):
        windows = [lr[:, y0:y1, x0:x1] for y0, y1, x0, x1 in (t.window for t in group)]
        x = torch.stack(windows) if len(windows) > 1 else windows[0].unsqueeze(0)
        out = forward(x)
        th, tw = group[0].shape
        if tuple(out.shape[-2:]) != (th * scale, tw * scale):
            raise FacdError(
                f"model output {tuple(out.shape[-2:])} is not x{scale} of its input {(th, tw)}"
            )
        if check_finite and not all_finite(out):
            raise NonFiniteOutputError(
                "model output holds NaN or infinite values; the weights are probably broken "
                "(e.g. saved from a diverged training run), or half precision overflowed"
            )
        for t, y in zip(group, out, strict=True):
            ys, xs = t.core_in_window(scale)
            write(t.core[0] * scale, t.core[2] * scale, y[:, ys, xs])
        if on_tile is not None:
            on_tile(len(group))
    return len(tiles)
