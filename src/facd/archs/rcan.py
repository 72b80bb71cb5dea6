"""RCAN (Zhang et al., 2018) with the official RCAN parameter names, and its declaration.

Declaration (see :mod:`facd.archs.registry`): presets; official, BasicSR and facd-metadata
layouts; taps after residual groups 3 and 7 (or the thirds of fewer groups) and at
``body_out``; tiling approximate at any overlap (global channel attention).

Its body in files: RCAB ``b`` of group ``g`` is ``body.{g}.body.{b}`` (official) or
``body.{g}.residual_group.{b}.rcab`` (BasicSR), its channel attention ``body.3.conv_du.0|2``
or ``rcab.3.attention.1|3``; a group's last conv is ``body.{g}.body.{n_blocks}`` or
``body.{g}.conv``. The channel-attention keys mark a file as RCAN's; ``n_groups`` and
``n_blocks`` are counted, and ``reduction`` is read from the attention's squeezed width.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
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
    conv_shape,
    count_indices,
    default_conv,
    is_basicsr_layout,
)
from facd.archs.registry import Shapes, TapPoint, Tiling, register
from facd.errors import CheckpointError, ConfigError
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


#: the official name of a channel attention's first conv: it marks an RCAN file
_CA_WEIGHT = re.compile(r"^body\.(\d+)\.body\.(\d+)\.body\.3\.conv_du\.0\.weight$")
#: BasicSR -> official names in a residual group, first match wins
_BASICSR_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"^body\.(\d+)\.residual_group\.(\d+)\.rcab\.3\.attention\.1\."),
        r"body.\1.body.\2.body.3.conv_du.0.",
    ),
    (
        re.compile(r"^body\.(\d+)\.residual_group\.(\d+)\.rcab\.3\.attention\.3\."),
        r"body.\1.body.\2.body.3.conv_du.2.",
    ),
    (
        re.compile(r"^body\.(\d+)\.residual_group\.(\d+)\.rcab\.(\d+)\."),
        r"body.\1.body.\2.body.\3.",
    ),
)


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

    def body_marked(self, shapes: Shapes) -> bool:
        """BasicSR's ``residual_group`` keys, or the official channel-attention ones."""
        if is_basicsr_layout(shapes):
            return any(".residual_group." in k for k in shapes)
        return any(_CA_WEIGHT.match(k) for k in shapes)

    def basicsr_body_key(self, key: str, sd: Mapping[str, Any]) -> str:
        """A group's ``conv`` is the group's last index, so its RCABs are counted first."""
        if m := re.match(r"^body\.(\d+)\.conv\.(weight|bias)$", key):
            g = m.group(1)
            n_blocks = count_indices(sd, rf"^body\.{g}\.residual_group\.(\d+)\.")
            return f"body.{g}.body.{n_blocks}.{m.group(2)}"
        for pattern, repl in _BASICSR_RULES:
            if pattern.search(key):
                return pattern.sub(repl, key)
        return key

    def official_body_key(self, key: str, spec: ArchSpec) -> str:
        m = re.match(r"^body\.(\d+)\.body\.(\d+)\.(.*)$", key)
        if not m:
            return key
        g, b, rest = m.groups()
        if int(b) == spec.n_blocks:
            return f"body.{g}.conv.{rest}"
        rest = rest.replace("body.3.conv_du.0.", "rcab.3.attention.1.")
        rest = rest.replace("body.3.conv_du.2.", "rcab.3.attention.3.")
        rest = re.sub(r"^body\.(\d)\.", r"rcab.\1.", rest)
        return f"body.{g}.residual_group.{b}.{rest}"

    def detect_body(self, sd: Shapes, n_feats: int, source: str) -> dict[str, Any] | None:
        """Groups and RCABs by counting; ``reduction`` from the attention's squeezed width."""
        ca_keys = sorted(k for k in sd if _CA_WEIGHT.match(k))
        if not ca_keys:
            return None
        squeeze = conv_shape(sd, ca_keys[0], source)[0]
        reduction = max(1, n_feats // squeeze)
        if n_feats // reduction != squeeze:
            raise CheckpointError(
                f"{source}: channel attention {ca_keys[0]!r} squeezes {n_feats} channels "
                f"to {squeeze}, which no reduction factor gives"
            )
        return {
            "n_blocks": count_indices(sd, r"^body\.0\.body\.(\d+)\.body\."),
            "n_groups": count_indices(sd, r"^body\.(\d+)\.body\.\d+\.body\."),
            "reduction": reduction,
        }

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
