"""Tiling: grid invariants, receptive-field margin, exactness for EDSR, the RCAN limitation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from facd.archs import ArchSpec, build_model, preset_spec
from facd.errors import FacdError
from facd.infer.tiling import (
    default_tile,
    receptive_margin,
    split_axis,
    tail_margin,
    tile_grid,
    tiled_forward,
    tiling_is_exact,
)


def _net(name: str, scale: int, seed: int = 0) -> nn.Module:
    """A preset, or ``"small"``: EDSR with 2 blocks of 8 channels (margin 8), for speed."""
    torch.manual_seed(seed)
    if name == "small":
        return build_model(ArchSpec("edsr", scale, n_feats=8, n_blocks=2)).eval()
    return build_model(preset_spec(name, scale)).eval()


def _run_tiled(model: nn.Module, x: torch.Tensor, scale: int, **kw) -> torch.Tensor:
    out = torch.full((3, x.shape[-2] * scale, x.shape[-1] * scale), float("nan"), dtype=x.dtype)

    def write(y: int, xx: int, block: torch.Tensor) -> None:
        out[:, y : y + block.shape[1], xx : xx + block.shape[2]] = block

    with torch.no_grad():
        tiled_forward(model, x, scale, write, **kw)
    return out


# ----------------------------------------------------------------------------- grid


@pytest.mark.parametrize("length", [1, 7, 64, 100, 181, 320])
@pytest.mark.parametrize("tile", [0, 1, 16, 50, 128, 400])
@pytest.mark.parametrize("overlap", [0, 3, 16])
def test_split_axis_invariants(length: int, tile: int, overlap: int) -> None:
    parts = split_axis(length, tile, overlap)
    cores = [(c0, c1) for c0, c1, _, _ in parts]
    # cores tile [0, length) without gaps or overlaps
    assert cores[0][0] == 0 and cores[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(cores, cores[1:], strict=False))
    sizes = [c1 - c0 for c0, c1 in cores]
    assert min(sizes) >= 1
    if 0 < tile < length:
        assert max(sizes) <= tile
        assert len(parts) == -(-length // tile)
        assert max(sizes[:-1]) - min(sizes[:-1], default=max(sizes)) <= 1
    else:
        assert len(parts) == 1
    windows = {w1 - w0 for _, _, w0, w1 in parts}
    sides = 2 if len(parts) > 2 else 1  # with two tiles, each has one inner side
    assert windows == {min(max(sizes) + sides * overlap, length)}  # one window length
    for c0, c1, w0, w1 in parts:
        assert 0 <= w0 <= c0 and c1 <= w1 <= length
        assert w0 == 0 or c0 - w0 >= overlap  # context, unless at the image border
        assert w1 == length or w1 - c1 >= overlap


def test_split_axis_rejects_bad_values() -> None:
    with pytest.raises(FacdError):
        split_axis(0, 8, 0)
    with pytest.raises(FacdError):
        split_axis(10, 8, -1)


def test_every_output_pixel_written_once() -> None:
    x = torch.rand(3, 37, 53)
    count = torch.zeros(37 * 3, 53 * 3)
    out = torch.zeros(3, 37 * 3, 53 * 3)

    def write(y: int, xx: int, block: torch.Tensor) -> None:
        count[y : y + block.shape[1], xx : xx + block.shape[2]] += 1
        out[:, y : y + block.shape[1], xx : xx + block.shape[2]] = block

    def nearest(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, scale_factor=3, mode="nearest")

    n = tiled_forward(nearest, x, 3, write, tile=10, overlap=4, batch=3)
    assert n == len(tile_grid(37, 53, 10, 4)) == 4 * 6
    assert torch.equal(count, torch.ones_like(count))
    assert torch.equal(out, nearest(x[None])[0])


# ----------------------------------------------------------------------------- margin


def _positive_net(name: str, scale: int) -> nn.Module:
    """Every conv weight positive and biases large: all ReLUs active, so an output pixel's
    gradient is non-zero exactly on its receptive field."""
    net = _net(name, scale)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(m.weight.abs() + 1e-3)
                m.bias.fill_(100.0)
    return net


def _measured_margin(fn, channels: int, scale: int, size: int) -> int:
    """Largest LR distance from an output pixel's own LR pixel to an input pixel it depends on."""
    centre = size // 2
    worst = 0
    for phase in (0, scale - 1):  # the extreme sub-pixel phases reach furthest left / right
        x = torch.rand(1, channels, size, size, requires_grad=True)
        q = centre * scale + phase
        fn(x)[0, :, q, q].sum().backward()
        support = x.grad[0].abs().sum(0) > 0
        cols = torch.nonzero(support.any(0)).flatten()
        rows = torch.nonzero(support.any(1)).flatten()
        assert cols.min() > 0 and cols.max() < size - 1, "image too small to see the margin"
        worst = max(
            worst,
            centre - int(cols.min()),
            int(cols.max()) - centre,
            centre - int(rows.min()),
            int(rows.max()) - centre,
        )
    return worst


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_receptive_margin_matches_gradient_support(scale: int) -> None:
    spec = preset_spec("edsr-tiny-s", scale)
    net = _positive_net("edsr-tiny-s", scale)
    size = 2 * receptive_margin(spec) + 9
    assert _measured_margin(net, 3, scale, size) == receptive_margin(spec)


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_tail_margin_matches_gradient_support(scale: int) -> None:
    net = _positive_net("edsr-tiny-s", scale)
    assert _measured_margin(net.forward_tail, net.spec.n_feats, scale, 15) == tail_margin(net.spec)
    assert tail_margin(net.spec) == 2


@pytest.mark.parametrize("name", ["edsr-s", "edsr-t", "edsr-tiny-s"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_receptive_margin_hand_formula(name: str, scale: int) -> None:
    # head + 2 per block + body end + first upsampler conv, + 1 for the convs after upsampling
    spec = preset_spec(name, scale)
    assert receptive_margin(spec) == 1 + 2 * spec.n_blocks + 1 + 1 + 1


def test_rcan_margin_counts_group_convs() -> None:
    spec = preset_spec("rcan-s", 4)
    convs = 1 + spec.n_groups * (2 * spec.n_blocks + 1) + 1 + 1
    assert receptive_margin(spec) == convs + 1
    assert not tiling_is_exact(spec, 10_000)


# ----------------------------------------------------------------------------- exactness


@pytest.mark.parametrize(("scale", "tile", "batch"), [(2, 16, 1), (3, 24, 4), (4, 20, 2)])
def test_edsr_tiles_exact_at_margin(scale: int, tile: int, batch: int) -> None:
    net = _net("small", scale)
    m = receptive_margin(net.spec)
    assert tiling_is_exact(net.spec, m)
    x = torch.rand(1, 3, 45, 61)
    with torch.no_grad():
        ref = net(x)[0]
    out = _run_tiled(net, x, scale, tile=tile, overlap=m, batch=batch)
    assert len(tile_grid(45, 61, tile, m)) >= 4
    assert (out - ref).abs().max().item() <= 1e-5


def test_edsr_tiles_inexact_below_margin() -> None:
    # float64, so the far pixels' small share of the output stands far above rounding error
    net = _positive_net("small", 2).double()
    m = receptive_margin(net.spec)
    x = torch.rand(1, 3, 20, 60, dtype=torch.float64)  # inner columns: context only m - 1
    with torch.no_grad():
        ref = net(x)[0]
    exact = _run_tiled(net, x, 2, tile=10, overlap=m)
    short = _run_tiled(net, x, 2, tile=10, overlap=m - 1)
    size = ref.abs().max().item()
    assert (exact - ref).abs().max().item() <= 1e-12 * size
    assert (short - ref).abs().max().item() > 1e-9 * size


def test_rcan_tiles_never_exact() -> None:
    net = _net("rcan-tiny-s", 2)
    m = receptive_margin(net.spec)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = net(x)[0]
        wide = _run_tiled(net, x, 2, tile=16, overlap=m + 3)  # windows 48 of 64 pixels
        whole = _run_tiled(net, x, 2, tile=0, overlap=0)
    assert (wide - ref).abs().max().item() > 1e-7  # global pooling sees only the window
    assert (whole - ref).abs().max().item() == 0.0


def test_tiled_forward_checks_input() -> None:
    with pytest.raises(FacdError):
        tiled_forward(lambda t: t, torch.rand(2, 3, 8, 8), 1, lambda *a: None, tile=4)
    with pytest.raises(FacdError):
        tiled_forward(lambda t: t, torch.rand(3, 8, 8), 1, lambda *a: None, tile=4, batch=0)
    with pytest.raises(FacdError, match="not x2"):
        tiled_forward(lambda t: t, torch.rand(3, 8, 8), 2, lambda *a: None, tile=4)


def test_default_tile_scales_with_width() -> None:
    assert default_tile(preset_spec("edsr-s", 4)) == 512
    assert default_tile(preset_spec("edsr-t", 4)) == 256  # 4x the channels, half the side
    assert default_tile(preset_spec("edsr-tiny-s", 2)) % 8 == 0
