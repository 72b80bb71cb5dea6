"""RCAN (Zhang et al., 2018) with the official RCAN parameter names."""

from __future__ import annotations

import torch
from torch import nn

from facd.archs.common import SRNetwork, Upsampler, default_conv
from facd.archs.spec import ArchSpec


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
