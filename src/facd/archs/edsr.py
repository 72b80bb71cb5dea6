"""EDSR (Lim et al., 2017) with the official EDSR-PyTorch parameter names."""

from __future__ import annotations

import torch
from torch import nn

from facd.archs.common import SRNetwork, Upsampler, default_conv
from facd.archs.spec import ArchSpec


class ResBlock(nn.Module):
    """conv-ReLU-conv with a scaled identity skip; keys ``body.0`` and ``body.2``."""

    def __init__(self, n_feats: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            default_conv(n_feats, n_feats, 3),
            nn.ReLU(inplace=True),
            default_conv(n_feats, n_feats, 3),
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.body(x)
        if self.res_scale != 1.0:
            res = res * self.res_scale
        return res + x


class EDSR(SRNetwork):
    def __init__(self, spec: ArchSpec) -> None:
        super().__init__(spec)
        nf = spec.n_feats
        self.head = nn.Sequential(default_conv(spec.n_colors, nf, 3))
        self.body = nn.Sequential(
            *[ResBlock(nf, spec.res_scale) for _ in range(spec.n_blocks)], default_conv(nf, nf, 3)
        )
        self.tail = nn.Sequential(Upsampler(spec.scale, nf), default_conv(nf, spec.n_colors, 3))
