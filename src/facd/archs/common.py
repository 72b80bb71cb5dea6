"""Layers and declaration parts shared by EDSR and RCAN (the official EDSR-PyTorch names).

:class:`SRFamily` holds what the two declarations have in common: the ``sub_mean -> head ->
body -> tail -> add_mean`` skeleton, the official/BasicSR key layouts and their detection, the
frozen MeanShift constants a file may omit, and the tiling margin of their 3x3 convolutions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from facd.archs.registry import Architecture, Shapes, Tiling
from facd.errors import ConfigError
from facd.typedconfig import short_repr

if TYPE_CHECKING:
    from facd.archs.spec import ArchSpec


def default_conv(
    in_channels: int, out_channels: int, kernel_size: int, bias: bool = True
) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)


class MeanShift(nn.Conv2d):
    """Subtracts (sign=-1) or adds (sign=+1) the dataset mean, as a frozen 1x1 conv.

    Official checkpoints store its weight and bias, so it is kept as a conv with the same names.
    """

    def __init__(
        self,
        rgb_range: float,
        rgb_mean: tuple[float, float, float],
        rgb_std: tuple[float, float, float] = (1.0, 1.0, 1.0),
        sign: int = -1,
    ) -> None:
        super().__init__(3, 3, kernel_size=1)
        std = torch.tensor(rgb_std)
        self.weight.data = torch.eye(3).view(3, 3, 1, 1) / std.view(3, 1, 1, 1)
        assert self.bias is not None  # Conv2d built with bias=True
        self.bias.data = sign * rgb_range * torch.tensor(rgb_mean) / std
        for p in self.parameters():
            p.requires_grad = False


class Upsampler(nn.Sequential):
    """Conv + PixelShuffle stages: log2(scale) x2-stages, or one x3 stage."""

    def __init__(self, scale: int, n_feats: int) -> None:
        layers: list[nn.Module] = []
        if scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [default_conv(n_feats, 4 * n_feats, 3), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [default_conv(n_feats, 9 * n_feats, 3), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"unsupported scale {scale}")
        super().__init__(*layers)


class SRNetwork(nn.Module):
    """Base of EDSR and RCAN: ``sub_mean -> head -> body (+ global skip) -> tail -> add_mean``.

    The public ``forward`` takes and returns RGB in [0, 1]; internally the network runs in
    [0, rgb_range] like the official code, so official weights load unchanged.
    ``body`` ends with the body-end conv. The global skip is added out of place and then passed
    through ``body_out`` (an identity with no parameters), so a hook on ``body_out`` sees the
    post-skip feature that FAKD's in-place ``res += x`` taps, and a hook on the body-end conv
    sees the pre-skip one.
    """

    head: nn.Sequential
    body: nn.Sequential
    tail: nn.Sequential

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        from facd.archs.spec import DIV2K_MEAN

        self.spec = spec
        self.scale = spec.scale
        self.rgb_range = spec.rgb_range
        self.sub_mean = MeanShift(spec.rgb_range, DIV2K_MEAN, sign=-1)
        self.add_mean = MeanShift(spec.rgb_range, DIV2K_MEAN, sign=1)
        self.body_out = nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """LR [0,1] -> body output after the global skip (the input of the upsampler)."""
        x = self.sub_mean(x * self.rgb_range)
        x = self.head(x)
        return self.body_out(self.body(x) + x)

    def forward_tail(self, res: torch.Tensor) -> torch.Tensor:
        return self.add_mean(self.tail(res)) / self.rgb_range

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_tail(self.forward_features(x))


# ----------------------------------------------------------------------------- declarations


def check_sr_params(
    n_feats: int, n_blocks: int, n_colors: int, rgb_range: float, extra: str = ""
) -> None:
    """Value checks shared by EDSR and RCAN hyperparameters (one-line ConfigErrors)."""
    from facd.archs.spec import finite

    if n_feats < 1 or n_blocks < 1:
        raise ConfigError(
            f"n_feats and n_blocks must be >= 1, got {short_repr(n_feats)}, {short_repr(n_blocks)}"
        )
    if n_colors != 3:
        raise ConfigError(f"n_colors must be 3 (RGB networks only), got {short_repr(n_colors)}")
    if not (finite(rgb_range) and rgb_range > 0):
        raise ConfigError(f"rgb_range must be a finite number > 0, got {short_repr(rgb_range)}")


def conv(cin: int, cout: int, k: int) -> int:
    """Parameters of a conv with bias."""
    return cin * cout * k * k + cout


def upsampler_stages(scale: int) -> list[int]:
    """Pixel-shuffle factors: log2(scale) x2 stages, or one x3 stage."""
    return [2] * int(math.log2(scale)) if scale & (scale - 1) == 0 else [scale]


def conv_margin(n_lr: int, stages: list[int]) -> int:
    """Walk back from an output pixel of each sub-pixel phase: a 3x3 conv widens the dependency
    interval by one pixel at its resolution, a pixel shuffle by ``f`` maps output pixel ``q``
    to input pixel ``floor(q / f)``; then ``n_lr`` convs at LR resolution."""
    scale = math.prod(stages)
    need = 0
    for phase in range(scale):  # output pixel q = phase belongs to LR pixel 0
        lo = hi = phase
        for f in reversed(stages):
            lo, hi = lo - 1, hi + 1  # the conv after this pixel shuffle
            lo, hi = lo // f, hi // f
        need = max(need, -(lo - n_lr), hi + n_lr)
    return need


class SRFamily(Architecture):
    """The parts of the EDSR and RCAN declarations that are the same."""

    optional_keys = ("sub_mean.", "add_mean.")
    export_layouts = {
        "official": "a plain state dict with every key of the original module (the MeanShift "
        "sub_mean/add_mean convs included): EDSR-PyTorch's and RCAN's code (--pre_train), and "
        "spandrel for RCAN",
        "basicsr": '{"params": ...} with BasicSR\'s names and no MeanShift (BasicSR keeps the '
        "mean as a constant): BasicSR's EDSR and RCAN",
    }

    def body_convs(self, spec: ArchSpec) -> int:
        """3x3 convs in the body at LR resolution (including the body-end conv)."""
        raise NotImplementedError

    def body_size(self, spec: ArchSpec) -> tuple[int, int]:
        """(convs, parameters) of the body without the body-end conv."""
        raise NotImplementedError

    def layout_size(self, spec: ArchSpec) -> tuple[int, int]:
        """Every conv has a weight and a bias; the MeanShift convs are left out."""
        f, c = spec.n_feats, spec.n_colors
        stages = len(upsampler_stages(spec.scale))
        up = 4 * f if spec.scale & (spec.scale - 1) == 0 else 9 * f
        body_convs, body_params = self.body_size(spec)
        convs = 3 + stages + body_convs  # head, body-end conv, tail conv, upsampler convs
        params = conv(c, f, 3) + conv(f, f, 3) + conv(f, c, 3) + stages * conv(f, up, 3)
        return 2 * convs, params + body_params

    def claims(self, shapes: Shapes) -> bool:
        from facd.archs.formats import sr_family_of

        return sr_family_of(shapes) == self.name

    def to_official(self, sd: Mapping[str, Any]) -> dict[str, Any]:
        from facd.archs.formats import basicsr_to_official, is_basicsr_layout

        return basicsr_to_official(sd) if is_basicsr_layout(sd) else dict(sd)

    def export_layout(self, layout: str, spec: ArchSpec, sd: Mapping[str, torch.Tensor]) -> Any:
        """``official``: ``sd`` itself (facd's EDSR/RCAN use the official names); ``basicsr``:
        ``{"params": official_to_basicsr(sd)}``."""
        from facd.archs.formats import official_to_basicsr

        if layout == "official":
            return dict(sd)
        if layout == "basicsr":
            return {"params": official_to_basicsr(sd, spec)}
        return super().export_layout(layout, spec, sd)

    def detect(self, shapes: Shapes, source: str) -> ArchSpec:
        from facd.archs.formats import detect_sr_family

        return detect_sr_family(shapes, source)

    def conv_layers(self, spec: ArchSpec) -> tuple[int, list[int]]:
        """(3x3 convs at LR resolution, pixel-shuffle factors): head + body + the first
        upsampler conv; after each pixel shuffle there is exactly one 3x3 conv."""
        return 1 + self.body_convs(spec) + 1, upsampler_stages(spec.scale)

    def default_tile(self, spec: ArchSpec) -> int:
        """512 LR px for 64 channels, scaled by ``sqrt(64 / n_feats)`` (same body memory)."""
        return max(64, int(512 * math.sqrt(64 / spec.n_feats)) // 8 * 8)

    def sr_tiling(self, spec: ArchSpec, exact: bool, reason: str = "") -> Tiling:
        n_lr, stages = self.conv_layers(spec)
        return Tiling(
            exact=exact,
            margin=conv_margin(n_lr, stages),
            reason=reason,
            tail_margin=conv_margin(1, stages),
        )
