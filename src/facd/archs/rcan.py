"""RCAN (Zhang et al., 2018) with the official RCAN parameter names, and its declaration.

Declaration (see :mod:`facd.archs.registry`): presets; official, BasicSR and facd-metadata
layouts; taps after residual groups 3 and 7 (or the thirds of fewer groups) and at
``body_out``; tiling approximate at any overlap (global channel attention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from facd.archs.common import (
    SRFamily,
    SRNetwork,
    Upsampler,
    check_sr_params,
    conv,
    default_conv,
)
from facd.archs.registry import TapPoint, Tiling, register
from facd.errors import ConfigError
from facd.typedconfig import short_repr

if TYPE_CHECKING:
    from facd.archs.spec import ArchSpec


@dataclass(frozen=True)
class RCANParams:
    """RCAN hyperparameters; ``n_blocks`` counts RCABs per residual group."""

    n_feats: int = 64
    n_blocks: int = 16
    n_groups: int = 0
    reduction: int = 16
    n_colors: int = 3
    rgb_range: float = 255.0

    def __post_init__(self) -> None:

        check_sr_params(self.n_feats, self.n_blocks, self.n_colors, self.rgb_range)
        if self.n_groups < 1:
            raise ConfigError(f"rcan needs n_groups >= 1, got {short_repr(self.n_groups)}")
        if self.reduction < 1:
            raise ConfigError(f"reduction must be >= 1, got {short_repr(self.reduction)}")
        if self.n_feats // self.reduction < 1:
            raise ConfigError(
                f"rcan n_feats {self.n_feats} is smaller than reduction {self.reduction}"
            )


class CALayer(nn.Module):
    """Channel attention; keys ``conv_du.0`` and ``conv_du.2``."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(self.avg_pool(x))


class RCAB(nn.Module):
    """Residual channel attention block; ``body.0`` conv, ``body.2`` conv, ``body.3`` CALayer.

    Like the official code, ``res_scale`` is not applied inside RCAB.
    """

    def __init__(self, n_feats: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            default_conv(n_feats, n_feats, 3),
            nn.ReLU(inplace=True),
            default_conv(n_feats, n_feats, 3),
            CALayer(n_feats, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x


class ResidualGroup(nn.Module):
    def __init__(self, n_feats: int, reduction: int, n_blocks: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *[RCAB(n_feats, reduction) for _ in range(n_blocks)], default_conv(n_feats, n_feats, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x


class RCAN(SRNetwork):
    def __init__(self, spec: ArchSpec) -> None:
        super().__init__(spec)
        nf = spec.n_feats
        self.head = nn.Sequential(default_conv(spec.n_colors, nf, 3))
        self.body = nn.Sequential(
            *[ResidualGroup(nf, spec.reduction, spec.n_blocks) for _ in range(spec.n_groups)],
            default_conv(nf, nf, 3),
        )
        self.tail = nn.Sequential(Upsampler(spec.scale, nf), default_conv(nf, spec.n_colors, 3))


def _legacy_res_scale(value: Any, where: str) -> None:
    """Metadata written before the registry stored EDSR's ``res_scale`` for RCAN too."""
    from facd.archs.spec import finite

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not finite(value):
        raise ConfigError(f"res_scale must be a finite number, got {short_repr(value)}")


class RCANArch(SRFamily):
    name = "rcan"
    title = "RCAN"
    signature_keys = ("head.0.weight",)
    params_type = RCANParams
    presets = {
        "rcan-t": dict(n_groups=10, n_blocks=20, n_feats=64, reduction=16),
        "rcan-s": dict(n_groups=10, n_blocks=6, n_feats=64, reduction=16),
        "rcan-tiny-t": dict(n_groups=3, n_blocks=3, n_feats=32, reduction=8),
        "rcan-tiny-s": dict(n_groups=3, n_blocks=1, n_feats=16, reduction=8),
    }
    legacy_keys = {"res_scale": _legacy_res_scale}

    def build(self, spec: ArchSpec) -> nn.Module:
        return RCAN(spec)

    def describe(self, spec: ArchSpec) -> str:
        return (
            f"RCAN x{spec.scale}: {spec.n_groups} groups x {spec.n_blocks} RCABs, "
            f"{spec.n_feats} channels, reduction {spec.reduction}"
        )

    def match_fields(self, spec: ArchSpec) -> list[str]:
        return ["n_feats", "n_colors", "n_blocks", "n_groups", "reduction"]

    def metadata_mismatch(self, claimed: ArchSpec, found: ArchSpec) -> tuple[str, Any, Any] | None:
        """Only the squeezed width of the channel attention leaves a trace of ``reduction``."""
        for name in ("n_feats", "n_colors", "n_blocks", "n_groups"):
            if getattr(claimed, name) != getattr(found, name):
                return name, getattr(claimed, name), getattr(found, name)
        a, b = claimed.n_feats // claimed.reduction, found.n_feats // found.reduction
        return ("n_feats // reduction", a, b) if a != b else None

    def body_convs(self, spec: ArchSpec) -> int:
        return spec.n_groups * (2 * spec.n_blocks + 1) + 1

    def body_size(self, spec: ArchSpec) -> tuple[int, int]:
        f = spec.n_feats
        squeeze = f // spec.reduction
        rcab = 2 * conv(f, f, 3) + conv(f, squeeze, 1) + conv(squeeze, f, 1)
        convs = spec.n_groups * (4 * spec.n_blocks + 1)
        return convs, spec.n_groups * (spec.n_blocks * rcab + conv(f, f, 3))

    def taps(self, spec: ArchSpec) -> list[TapPoint]:
        """After residual groups 3 and 7 (``body.2``, ``body.6``) and at ``body_out``; networks
        with fewer than 8 groups are split in thirds."""
        if spec.n_groups < 8:
            third = max(spec.n_groups // 3, 1)
            paths = [f"body.{third - 1}", f"body.{min(2 * third, spec.n_groups) - 1}", "body_out"]
        else:
            paths = ["body.2", "body.6", "body_out"]
        return [TapPoint(p, spec.n_feats) for p in paths]

    def tiling(self, spec: ArchSpec) -> Tiling:
        """The margin of the convolutions; the channel attention averages each map over the
        whole input, so tiles differ slightly from the whole image at any overlap."""
        return self.sr_tiling(spec, exact=False, reason="global channel attention")


ARCH = register(RCANArch())
