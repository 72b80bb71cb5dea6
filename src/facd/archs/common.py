"""Layers shared by EDSR and RCAN, with the parameter names of the official EDSR-PyTorch code."""

from __future__ import annotations

import math

import torch
from torch import nn


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

    def __init__(self, spec) -> None:
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
