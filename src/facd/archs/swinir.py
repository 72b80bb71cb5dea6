"""SwinIR (Liang et al., ICCVW 2021) with the official release's parameter names.

The network, written from the paper (Sec. 3, Fig. 2), so that the official ``{"params": ...}``
files load strictly:

* shallow features: ``conv_first`` (3x3, 3 -> C) on ``(x - mean) * img_range``;
* deep features: ``patch_embed`` (a LayerNorm over tokens, ``patch_embed.norm``), then K residual
  Swin Transformer blocks ``layers.k`` (RSTB), each ``residual_group.blocks.j`` (L Swin
  Transformer layers, window ``M``, shifted by ``M/2`` on odd layers) followed by ``conv`` (3x3)
  and a skip; then ``norm`` (LayerNorm) and ``conv_after_body`` (3x3) with a long skip from the
  shallow features;
* reconstruction: ``pixelshuffle`` (classical SR: ``conv_before_upsample`` 3x3 C -> 64 +
  LeakyReLU, ``upsample`` x2 stages or one x3 stage, ``conv_last``) or ``pixelshuffledirect``
  (lightweight SR: ``upsample.0`` 3x3 C -> 3 s^2 and a pixel shuffle).

A Swin Transformer layer (Eq. 3-4 of the SwinIR paper): ``x + MSA(LN(x))`` then
``x + MLP(LN(x))``. Window attention per head: ``softmax(Q K^T / sqrt(d) + B) V`` with the
learned relative-position bias ``B`` (``relative_position_bias_table`` of
``(2M-1)^2 x heads``, indexed by the ``relative_position_index`` buffer). Shifted layers
cyclically roll the map by ``-M/2`` and mask attention between regions that were not adjacent
(mask value -100, as in Swin), then roll back.

Inputs of any size are reflect-padded to a multiple of ``M`` and the output is cropped back, as
the official code does. The ``attn_mask`` buffers of shifted layers are computed for the
training patch size ``img_size`` (they are in the official files, so their shape gives
``img_size``); other sizes compute their mask on the fly.

Taps: ``taps.k`` is an identity fed the output of RSTB ``k`` as an ``(N, C, H, W)`` map with the
window padding cropped away, computed only when a hook is registered on it (distillation);
plain inference pays nothing. The identities hold no parameters, so state dicts are unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from facd.archs.formats import shape_of
from facd.archs.registry import Architecture, Shapes, TapPoint, Tiling, register
from facd.archs.spec import DIV2K_MEAN, finite
from facd.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from facd.archs.spec import ArchSpec

Upsampler = Literal["pixelshuffle", "pixelshuffledirect"]
StateOrShapes = Mapping[str, "torch.Tensor | tuple[int, ...]"]


@dataclass(frozen=True)
class SwinIRSpec:
    """Hyperparameters of a SwinIR network (the official constructor's names)."""

    scale: int
    embed_dim: int = 180
    depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6)
    num_heads: tuple[int, ...] = (6, 6, 6, 6, 6, 6)
    window_size: int = 8
    mlp_ratio: float = 2.0
    upsampler: Upsampler = "pixelshuffle"
    img_size: int = 64
    num_feat: int = 64  # channels of the pixelshuffle reconstruction
    img_range: float = 1.0
    drop_path_rate: float = 0.0  # stochastic depth while training (the official default: 0.1)

    def __post_init__(self) -> None:
        if self.scale not in (2, 3, 4, 8):
            raise ConfigError(f"SwinIR scale {self.scale!r} is not supported; use 2, 3, 4 or 8")
        if self.upsampler not in ("pixelshuffle", "pixelshuffledirect"):
            raise ConfigError(
                f"SwinIR upsampler {self.upsampler!r}; use pixelshuffle or pixelshuffledirect"
            )
        if not self.depths or len(self.depths) != len(self.num_heads):
            raise ConfigError(
                f"SwinIR depths {self.depths} and num_heads {self.num_heads} must be non-empty "
                "and of equal length"
            )
        if min(self.depths) < 1 or min(self.num_heads) < 1 or self.window_size < 1:
            raise ConfigError("SwinIR depths, num_heads and window_size must be >= 1")
        if any(self.embed_dim % h for h in self.num_heads):
            raise ConfigError(
                f"SwinIR embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}"
            )
        if self.embed_dim < 1 or self.num_feat < 1 or self.img_size < 1:
            raise ConfigError("SwinIR embed_dim, num_feat and img_size must be >= 1")
        if not (finite(self.mlp_ratio) and self.mlp_ratio > 0 and self.hidden >= 1):
            raise ConfigError(f"SwinIR mlp_ratio must be a number > 0, got {self.mlp_ratio!r}")
        if not (finite(self.img_range) and self.img_range > 0):
            raise ConfigError(f"SwinIR img_range must be a number > 0, got {self.img_range!r}")
        if not (finite(self.drop_path_rate) and 0 <= self.drop_path_rate < 1):
            raise ConfigError(
                f"SwinIR drop_path_rate must be in [0, 1), got {self.drop_path_rate!r}"
            )
        if self.img_size % self.window_size:
            raise ConfigError(
                f"SwinIR img_size {self.img_size} is not a multiple of window_size "
                f"{self.window_size}"
            )

    @property
    def rgb_range(self) -> float:
        """The value range inside the network (1 for SwinIR; EDSR/RCAN run in [0, 255])."""
        return self.img_range

    @property
    def n_colors(self) -> int:
        return 3

    @property
    def hidden(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)

    def describe(self) -> str:
        return (
            f"SwinIR x{self.scale}: {len(self.depths)} RSTB x {self.depths[0]} layers, "
            f"embed {self.embed_dim}, {self.num_heads[0]} heads, window {self.window_size}, "
            f"{self.upsampler}"
        )


def param_count(spec: SwinIRSpec, with_bias_tables: bool = True) -> int:
    """Learned parameters of ``spec``, computed from the layout alone (nothing allocated).

    ``with_bias_tables=False`` leaves out the relative-position bias tables, as the SwinIR
    paper's parameter counts do.
    """
    c, h = spec.embed_dim, spec.hidden

    def conv(cin: int, cout: int) -> int:
        return cin * cout * 9 + cout

    n = conv(3, c) + 2 * c  # conv_first, patch_embed.norm
    for depth, heads in zip(spec.depths, spec.num_heads, strict=True):
        layer = 2 * c + (c * 3 * c + 3 * c) + (c * c + c) + 2 * c + (c * h + h) + (h * c + c)
        if with_bias_tables:
            layer += (2 * spec.window_size - 1) ** 2 * heads
        n += depth * layer + conv(c, c)
    n += 2 * c + conv(c, c)  # norm, conv_after_body
    if spec.upsampler == "pixelshuffledirect":
        n += conv(c, 3 * spec.scale**2)
    else:
        f = spec.num_feat
        n += conv(c, f) + conv(f, 3)
        if spec.scale & (spec.scale - 1) == 0:
            n += int(math.log2(spec.scale)) * conv(f, 4 * f)
        else:
            n += conv(f, 9 * f)
    return n


def window_partition(x: torch.Tensor, m: int) -> torch.Tensor:
    """``(B, H, W, C)`` -> ``(B * H/m * W/m, m, m, C)``, windows in row-major order."""
    b, hh, ww, c = x.shape
    x = x.reshape(b, hh // m, m, ww // m, m, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, m, m, c)


def window_reverse(windows: torch.Tensor, m: int, hh: int, ww: int) -> torch.Tensor:
    """The inverse of :func:`window_partition`."""
    b = windows.shape[0] // ((hh // m) * (ww // m))
    x = windows.reshape(b, hh // m, ww // m, m, m, -1)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, hh, ww, -1)


def relative_position_index(m: int) -> torch.Tensor:
    """``(m^2, m^2)`` index into the ``(2m-1)^2`` bias table for every pair of window cells."""
    ys, xs = torch.meshgrid(torch.arange(m), torch.arange(m), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()])  # (2, m^2)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (m - 1)
    return rel[..., 0] * (2 * m - 1) + rel[..., 1]


def shifted_window_mask(hh: int, ww: int, m: int, shift: int) -> torch.Tensor:
    """``(nW, m^2, m^2)`` additive mask: 0 within a region, -100 across regions after the roll."""
    labels = torch.zeros(1, hh, ww, 1)
    cuts = (slice(0, -m), slice(-m, -shift), slice(-shift, None))
    region = 0
    for hs in cuts:
        for ws in cuts:
            labels[:, hs, ws, :] = region
            region += 1
    win = window_partition(labels, m).reshape(-1, m * m)
    diff = win.unsqueeze(1) - win.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside ``m x m`` windows with a relative-position bias."""

    relative_position_index: torch.Tensor  # buffer

    def __init__(self, dim: int, m: int, heads: int) -> None:
        super().__init__()
        self.m, self.heads = m, heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * m - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(m))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        bw, n, c = x.shape
        qkv = self.qkv(x).view(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        attn = attn + bias.view(n, n, -1).permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(bw // nw, nw, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(bw, self.heads, n, n)
        out = attn.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DropPath(nn.Module):
    """Stochastic depth: drop a sample's residual branch with probability ``p`` (training only)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class SwinLayer(nn.Module):
    """One (shifted) window transformer layer; the official name is SwinTransformerBlock."""

    attn_mask: torch.Tensor | None  # buffer (None for unshifted layers)

    def __init__(
        self, dim: int, heads: int, m: int, shift: int, hidden: int, img_size: int, drop: float
    ) -> None:
        super().__init__()
        self.m, self.shift, self.img_size = m, shift, img_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, m, heads)
        self.drop_path = DropPath(drop)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden)
        mask = shifted_window_mask(img_size, img_size, m, shift) if shift else None
        self.register_buffer("attn_mask", mask)

    def _mask(self, hh: int, ww: int, device: torch.device) -> torch.Tensor | None:
        if not self.shift:
            return None
        if self.attn_mask is not None and hh == ww == self.img_size:
            return self.attn_mask
        return shifted_window_mask(hh, ww, self.m, self.shift).to(device)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        hh, ww = size
        b, _, c = x.shape
        y = self.norm1(x).reshape(b, hh, ww, c)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        win = window_partition(y, self.m).reshape(-1, self.m * self.m, c)
        win = self.attn(win, self._mask(hh, ww, x.device))
        y = window_reverse(win.reshape(-1, self.m, self.m, c), self.m, hh, ww)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + self.drop_path(y.reshape(b, hh * ww, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class LayerGroup(nn.Module):
    """The transformer layers of one RSTB (the official BasicLayer: key ``blocks``)."""

    def __init__(self, layers: list[SwinLayer]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        for layer in self.blocks:
            x = layer(x, size)
        return x


def tokens_to_map(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(B, H*W, C)`` tokens -> ``(B, C, H, W)``."""
    b, _, c = x.shape
    return x.transpose(1, 2).reshape(b, c, size[0], size[1])


def map_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, H*W, C)`` tokens."""
    return x.flatten(2).transpose(1, 2)


class RSTB(nn.Module):
    """Residual Swin Transformer block: layers, a 3x3 conv, and a skip (Eq. 5)."""

    def __init__(self, spec: SwinIRSpec, depth: int, heads: int, drops: list[float]) -> None:
        super().__init__()
        m, dim = spec.window_size, spec.embed_dim
        layers = [
            SwinLayer(dim, heads, m, 0 if j % 2 == 0 else m // 2, spec.hidden, spec.img_size, p)
            for j, p in zip(range(depth), drops, strict=True)
        ]
        self.residual_group = LayerGroup(layers)
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = tokens_to_map(self.residual_group(x, size), size)
        return map_to_tokens(self.conv(y)) + x


class PatchNorm(nn.Module):
    """The official PatchEmbed with patch size 1: a LayerNorm over tokens (key ``norm``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(map_to_tokens(x))


class SwinIR(nn.Module):
    """SwinIR for classical (``pixelshuffle``) or lightweight (``pixelshuffledirect``) SR."""

    mean: torch.Tensor  # buffer

    def __init__(self, spec: SwinIRSpec) -> None:
        super().__init__()
        self.spec = spec
        self.scale = spec.scale
        self.window_size = spec.window_size
        self.img_range = spec.img_range
        self.direct = spec.upsampler == "pixelshuffledirect"
        self.register_buffer("mean", torch.tensor(DIV2K_MEAN).view(1, 3, 1, 1), persistent=False)
        c = spec.embed_dim
        self.conv_first = nn.Conv2d(3, c, 3, 1, 1)
        self.patch_embed = PatchNorm(c)
        total = sum(spec.depths)
        rate = spec.drop_path_rate  # rises linearly with depth, as in the official code
        drops = [rate * i / max(total - 1, 1) for i in range(total)]
        self.layers = nn.ModuleList()
        start = 0
        for depth, heads in zip(spec.depths, spec.num_heads, strict=True):
            self.layers.append(RSTB(spec, depth, heads, drops[start : start + depth]))
            start += depth
        self.taps = nn.ModuleList(nn.Identity() for _ in spec.depths)
        self.norm = nn.LayerNorm(c)
        self.conv_after_body = nn.Conv2d(c, c, 3, 1, 1)
        s = spec.scale
        if spec.upsampler == "pixelshuffledirect":
            self.upsample = nn.Sequential(nn.Conv2d(c, 3 * s * s, 3, 1, 1), nn.PixelShuffle(s))
        else:
            f = spec.num_feat
            self.conv_before_upsample = nn.Sequential(
                nn.Conv2d(c, f, 3, 1, 1), nn.LeakyReLU(inplace=True)
            )
            stages: list[nn.Module] = []
            if s & (s - 1) == 0:
                for _ in range(int(math.log2(s))):
                    stages += [nn.Conv2d(f, 4 * f, 3, 1, 1), nn.PixelShuffle(2)]
            else:
                stages += [nn.Conv2d(f, 9 * f, 3, 1, 1), nn.PixelShuffle(3)]
            self.upsample = nn.Sequential(*stages)
            self.conv_last = nn.Conv2d(f, 3, 3, 1, 1)
        self.apply(_init_weights)

    def forward_features(self, x: torch.Tensor, crop: tuple[int, int]) -> torch.Tensor:
        size = (x.shape[2], x.shape[3])
        t = self.patch_embed(x)
        for layer, tap in zip(self.layers, self.taps, strict=True):
            t = layer(t, size)
            if tap._forward_hooks:  # only when a distillation tap listens
                tap(tokens_to_map(t, size)[:, :, : crop[0], : crop[1]])
        return tokens_to_map(self.norm(t), size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]
        m = self.window_size
        pad_h, pad_w = (-h) % m, (-w) % m
        if pad_h or pad_w:
            # reflect, as the official code; an input smaller than the pad cannot be reflected
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        mean = self.mean.to(x.dtype)
        x = (x - mean) * self.img_range
        shallow = self.conv_first(x)
        deep = self.conv_after_body(self.forward_features(shallow, (h, w))) + shallow
        if self.direct:
            y = self.upsample(deep)
        else:
            y = self.conv_last(self.upsample(self.conv_before_upsample(deep)))
        y = y / self.img_range + mean
        return y[:, :, : h * self.scale, : w * self.scale]


def _init_weights(module: nn.Module) -> None:
    """The official initialisation: truncated normal (std 0.02) linears, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


# The variants of the SwinIR paper (Table 5/6 settings) and tiny ones for CPU tests.
SWINIR_PRESETS: dict[str, dict] = {
    "swinir-m": dict(
        embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6, upsampler="pixelshuffle", img_size=48
    ),
    "swinir-s": dict(
        embed_dim=60, depths=(6,) * 4, num_heads=(6,) * 4, upsampler="pixelshuffledirect"
    ),
    "swinir-tiny-t": dict(
        embed_dim=24,
        depths=(2, 2, 2),
        num_heads=(3, 3, 3),
        window_size=4,
        img_size=16,
        num_feat=16,
        upsampler="pixelshuffle",
    ),
    "swinir-tiny-s": dict(
        embed_dim=12,
        depths=(2, 2, 2),
        num_heads=(2, 2, 2),
        window_size=4,
        img_size=16,
        upsampler="pixelshuffledirect",
    ),
}


def swinir_preset(name: str, scale: int) -> SwinIRSpec:
    """A named SwinIR preset at ``scale`` (classical SwinIR-M trains on 64-pixel patches at x2)."""
    if name not in SWINIR_PRESETS:
        raise ConfigError(f"unknown SwinIR preset {name!r}; known: {', '.join(SWINIR_PRESETS)}")
    kw = dict(SWINIR_PRESETS[name])
    if name == "swinir-m" and scale == 2:
        kw["img_size"] = 64
    return SwinIRSpec(scale=scale, **kw)


# -- official checkpoints -----------------------------------------------------------------------


def unwrap_official(obj: object, source: str) -> dict[str, torch.Tensor]:
    """The state dict inside an official file: ``params_ema`` if present, else ``params``.

    This is the official test script's rule; a bare state dict is accepted as it is.
    """
    if isinstance(obj, dict) and ("params_ema" in obj or "params" in obj):
        obj = obj["params_ema"] if "params_ema" in obj else obj["params"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{source}: not a SwinIR state dict (expected tensors by name)")
    return obj


def _shape(state: StateOrShapes, key: str, source: str, ndim: int = 1) -> tuple[int, ...]:
    """The shape of ``key``, which must have at least ``ndim`` dimensions, all >= 1."""
    if key not in state:
        raise CheckpointError(f"{source}: SwinIR key {key!r} is missing")
    shape = shape_of(state[key])
    if len(shape) < ndim or min(shape, default=1) < 1:
        raise CheckpointError(
            f"{source}: SwinIR tensor {key!r} has shape {shape} (the file is damaged or not "
            "a SwinIR checkpoint)"
        )
    return shape


def detect(state: StateOrShapes, source: str = "checkpoint") -> SwinIRSpec:
    """Read a SwinIR's hyperparameters from its tensors' names and shapes.

    embed dim from ``conv_first``; depths from the ``blocks`` indices; heads from each layer's
    bias table; window from ``relative_position_index``; MLP ratio from ``fc1``; upsampler and
    scale from the reconstruction convs; ``img_size`` from the first ``attn_mask``
    (``nW = (img_size / M)^2``). Raises a one-line :class:`CheckpointError` on anything else.
    """
    embed = _shape(state, "conv_first.weight", source)[0]
    depths: list[int] = []
    layer_ids = {k.split(".")[1] for k in state if k.startswith("layers.")}
    while str(len(depths)) in layer_ids:
        k = len(depths)
        n = 0
        while f"layers.{k}.residual_group.blocks.{n}.norm1.weight" in state:
            n += 1
        if n == 0:
            raise CheckpointError(f"{source}: SwinIR layer {k} has no transformer blocks")
        depths.append(n)
    if not depths:
        raise CheckpointError(f"{source}: no SwinIR layers ('layers.0...') found")
    prefix = "layers.{}.residual_group.blocks.0.attn."
    heads = [
        _shape(state, prefix.format(k) + "relative_position_bias_table", source, 2)[1]
        for k in range(len(depths))
    ]
    n_index = _shape(state, prefix.format(0) + "relative_position_index", source)[0]
    window = math.isqrt(n_index)
    hidden = _shape(state, "layers.0.residual_group.blocks.0.mlp.fc1.weight", source)[0]
    img_size = 64
    if depths[0] > 1:
        nw = _shape(state, "layers.0.residual_group.blocks.1.attn_mask", source)[0]
        img_size = window * math.isqrt(nw)
    num_feat = 64
    if "conv_before_upsample.0.weight" in state:
        upsampler: Upsampler = "pixelshuffle"
        num_feat = _shape(state, "conv_before_upsample.0.weight", source)[0]
        stages = [
            _shape(state, f"upsample.{i}.weight", source)[0]
            for i in range(0, 8, 2)
            if f"upsample.{i}.weight" in state
        ]
        scale = 3 if stages == [9 * num_feat] else 2 ** len(stages)
    else:
        upsampler = "pixelshuffledirect"
        out = _shape(state, "upsample.0.weight", source)[0]
        scale = math.isqrt(out // 3)
    if scale not in (2, 3, 4, 8) or embed > 65536 or window > 1024:
        raise CheckpointError(
            f"{source}: SwinIR tensors give scale {scale}, embed dim {embed}, window {window}, "
            "which facd does not support (the file is damaged or of another network)"
        )
    try:
        spec = SwinIRSpec(
            scale=scale,
            embed_dim=embed,
            depths=tuple(depths),
            num_heads=tuple(heads),
            window_size=window,
            mlp_ratio=hidden / embed,
            upsampler=upsampler,
            img_size=img_size,
            num_feat=num_feat,
        )
    except ConfigError as err:
        raise CheckpointError(f"{source}: {err}") from None
    check_layout(state, spec, source)
    return spec


def check_layout(state: StateOrShapes, spec: SwinIRSpec, source: str) -> None:
    """Every tensor of ``spec``'s network present with its shape, and nothing else.

    Shapes are compared on a meta-device network (nothing allocated), so a file whose tensors
    disagree with its claimed layout fails here, before a real network is built.
    """
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in SwinIR(spec).state_dict().items()}
    missing = sorted(set(expected) - set(state))
    if missing:
        what = "buffer" if missing[0].endswith(("attn_mask", "relative_position_index")) else "key"
        raise CheckpointError(
            f"{source}: SwinIR {what} {missing[0]!r} is missing ({len(missing)} missing); "
            "official files carry the attn_mask and relative_position_index buffers"
        )
    extra = sorted(set(state) - set(expected))
    if extra:
        raise CheckpointError(
            f"{source}: unexpected key {extra[0]!r} for {spec.describe()} ({len(extra)} extra)"
        )
    for key, shape in expected.items():
        if shape_of(state[key]) != shape:
            raise CheckpointError(
                f"{source}: {key!r} has shape {shape_of(state[key])}, expected {shape} for "
                f"{spec.describe()}"
            )


def load_official(path: str | Path, expect: SwinIRSpec | None = None) -> tuple[SwinIR, SwinIRSpec]:
    """Load an official SwinIR release file (``{"params": ...}``), strictly and safely.

    With ``expect``, a file of another variant or scale is refused, naming both.
    """
    source = str(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for damaged files
        first = " ".join(str(err).split())[:160] or type(err).__name__
        raise CheckpointError(f"{source}: cannot read SwinIR checkpoint ({first})") from None
    state = unwrap_official(obj, source)
    spec = detect(state, source)
    if expect is not None and spec != expect:
        raise CheckpointError(
            f"{source} holds {spec.describe()}, but {expect.describe()} was asked for"
        )
    net = SwinIR(spec)
    net.load_state_dict(state, strict=True)
    return net, spec


# -- the declaration ------------------------------------------------------------------------------


def layout_size(spec: SwinIRSpec) -> tuple[int, int]:
    """(tensors, values) of the state dict, buffers included, computed from the spec alone."""
    m, c = spec.window_size, spec.embed_dim
    tensors = 2 + 2 + 2 + 2  # conv_first, patch_embed.norm, norm, conv_after_body
    values = param_count(spec)
    windows = (spec.img_size // m) ** 2
    for depth in spec.depths:
        shifted = depth // 2
        tensors += depth * 14 + shifted + 2  # 14 per layer, a mask per shifted layer, conv
        values += depth * m**4 + shifted * windows * m**4
    del c
    if spec.upsampler == "pixelshuffledirect":
        tensors += 2
    else:
        stages = int(math.log2(spec.scale)) if spec.scale & (spec.scale - 1) == 0 else 1
        tensors += 2 + 2 * stages + 2
    return tensors, values


class SwinIRArch(Architecture):
    """SwinIR: classical (``swinir-m``) and lightweight (``swinir-s``) SR, plus tiny presets.

    Checkpoints: the official ``{"params"|"params_ema": ...}`` files and facd's own, strictly
    (the ``attn_mask`` and ``relative_position_index`` buffers must be present and equal to the
    ones computed for the detected window and training size).
    Taps: the outputs of three RSTBs (``taps.k``, (N, C, H, W) with the window padding cropped).
    Tiling: approximate (see :meth:`tiling`).
    """

    name = "swinir"
    title = "SwinIR"
    signature_keys = ("conv_first.weight", "layers.0.*")
    param_count_note = "relative-position bias tables included"
    params_type = SwinIRSpec
    presets = SWINIR_PRESETS
    export_layouts = {
        "official": '{"params": ...} with every key of the original module (the '
        "relative_position_index and attn_mask buffers included): SwinIR's network_swinir.py "
        "(main_test_swinir.py for the released configurations), spandrel",
        "basicsr": "the same file: BasicSR's SwinIR has the official names and container",
    }

    def make_params(self, scale: int, values: Mapping[str, Any]) -> Any:
        return SwinIRSpec(scale=scale, **values)

    def preset_values(self, name: str, scale: int) -> dict[str, Any]:
        values = dict(self.presets[name])
        if name == "swinir-m" and scale == 2:  # classical x2 trains on 64-pixel patches
            values["img_size"] = 64
        return values

    def build(self, spec: ArchSpec) -> nn.Module:
        net = SwinIR(spec.params)
        net.spec = spec  # type: ignore[assignment]  # what facd reads from a built network
        return net

    def describe(self, spec: ArchSpec) -> str:
        return spec.params.describe()

    def layout_size(self, spec: ArchSpec) -> tuple[int, int]:
        return layout_size(spec.params)

    def param_count(self, spec: ArchSpec) -> int:
        return param_count(spec.params)

    def extra_counts(self, spec: ArchSpec) -> dict[str, int]:
        return {
            "without the relative-position bias tables (the SwinIR paper's count)": param_count(
                spec.params, with_bias_tables=False
            )
        }

    def match_fields(self, spec: ArchSpec) -> list[str]:
        """Everything but the training-only ``drop_path_rate``."""
        return [n for n in self.option_names() if n != "drop_path_rate"]

    def metadata_mismatch(self, claimed: ArchSpec, found: ArchSpec) -> tuple[str, Any, Any] | None:
        """``img_range`` and ``drop_path_rate`` leave no trace in the tensors."""
        for name in self.match_fields(claimed):
            if name == "img_range":
                continue
            a, b = getattr(claimed.params, name), getattr(found.params, name)
            if a != b:
                return name, a, b
        return None

    def claims(self, shapes: Shapes) -> bool:
        return any(k.startswith(("layers.", "patch_embed.")) for k in shapes)

    def detect(self, shapes: Shapes, source: str) -> ArchSpec:
        from facd.archs.spec import ArchSpec

        params = detect(shapes, source)
        return ArchSpec("swinir", params.scale, params)

    def export_layout(self, layout: str, spec: ArchSpec, sd: Mapping[str, torch.Tensor]) -> Any:
        """``{"params": sd}`` for both layouts: facd's SwinIR has the official names, and both
        the official test script and BasicSR load ``params``. The official code, BasicSR and
        spandrel fix the pixelshuffle reconstruction at 64 channels, so another ``num_feat``
        is refused (facd's tiny presets use 16)."""
        if layout not in self.export_layouts:
            return super().export_layout(layout, spec, sd)
        params = spec.params
        if params.upsampler == "pixelshuffle" and params.num_feat != 64:
            raise ConfigError(
                f"SwinIR with num_feat {params.num_feat}: the original code, BasicSR and "
                "spandrel build the pixelshuffle reconstruction with 64 channels, so they "
                "cannot load it; export it as a facd checkpoint, or train with num_feat 64"
            )
        return {"params": dict(sd)}

    def check_buffers(self, model: nn.Module, sd: Mapping[str, torch.Tensor], source: str) -> None:
        """Weights must be floating point; the index and mask buffers must equal ours (a
        tampered index would read outside the bias table)."""
        own = model.state_dict()
        for key, value in sd.items():
            if key.endswith(("relative_position_index", "attn_mask")):
                if value.dtype != own[key].dtype or not torch.equal(value, own[key]):
                    raise CheckpointError(
                        f"{source}: SwinIR buffer {key!r} differs from the one computed for "
                        f"window {model.window_size}; the file is damaged: use an intact copy"
                    )
            elif not value.is_floating_point():
                raise CheckpointError(
                    f"{source}: tensor {key!r} holds {value.dtype}; weights must be floating point"
                )

    def taps(self, spec: ArchSpec) -> list[TapPoint]:
        """RSTB outputs after the first and second third of the blocks and after the last
        (``taps.1``, ``taps.3``, ``taps.5`` of 6; ``taps.0``, ``taps.1``, ``taps.3`` of 4)."""
        k = len(spec.params.depths)
        q, r = divmod(k, 3)
        sizes = [q] * (3 - r) + [q + 1] * r
        a, b = max(sizes[0], 1), max(sizes[0] + sizes[1], 1)
        paths = [f"taps.{a - 1}", f"taps.{b - 1}", f"taps.{k - 1}"]
        return [TapPoint(p, spec.params.embed_dim) for p in paths]

    def tiling(self, spec: ArchSpec) -> Tiling:
        """Never exact: windows are laid out from each tile's corner (and padded by
        reflection), so a tile's windows are not the whole image's. Margin: 2 windows plus
        the convolutions; the tolerance is what the tests hold a tile to at that margin."""
        m = spec.params.window_size
        return Tiling(
            exact=False,
            margin=TILE_MARGIN_WINDOWS * m + 2 * len(spec.params.depths) + 4,
            tolerance=TILE_TOLERANCE,
            reason="attention at a tile's border sees the tile, not the image",
            align=m,
        )

    def onnx_refusal(self, spec: ArchSpec) -> str | None:
        return (
            "SwinIR cannot be exported to ONNX with dynamic sizes: the tracer freezes the "
            "number of attention windows and the shifted-window mask of the example input's size"
        )

    def default_tile(self, spec: ArchSpec) -> int:
        """256 LR px for the 60-wide SwinIR-S, scaled by ``sqrt(60 / embed_dim)``."""
        return max(64, int(256 * math.sqrt(60 / spec.params.embed_dim)) // 8 * 8)


#: Tile overlap in windows (plus the convolutions' pixels), and the max abs difference from
#: the untiled output (images in [0, 1]) allowed at that overlap.
TILE_MARGIN_WINDOWS = 2
TILE_TOLERANCE = 1e-4

ARCH = register(SwinIRArch())
