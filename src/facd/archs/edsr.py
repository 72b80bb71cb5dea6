"""EDSR (Lim et al., 2017) with the official EDSR-PyTorch parameter names, and its declaration.

Declaration (see :mod:`facd.archs.registry`): presets of the paper's Table 1 and tiny CPU ones;
official, BasicSR and facd-metadata layouts; taps after the first and second third of the
ResBlocks and at ``body_out``; tiling exact from the convolutions' receptive margin.

Its body in files: the official ResBlock ``body.{i}.body.0|2`` is BasicSR's
``body.{i}.conv1|conv2``; EDSR is the plain family of the skeleton (:mod:`facd.archs.common`),
so a skeleton file that no other family's blocks mark is read as EDSR.
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
    count_indices,
    default_conv,
)
from facd.archs.registry import Shapes, TapPoint, Tiling, register
from facd.errors import ConfigError
from facd.typedconfig import short_repr

if TYPE_CHECKING:
    from facd.archs.spec import ArchSpec


@dataclass(frozen=True)
class EDSRParams:
    """EDSR hyperparameters (EDSR-PyTorch's argument names)."""

    n_feats: int = 64
    n_blocks: int = 16
    res_scale: float = 1.0
    n_colors: int = 3
    rgb_range: float = 255.0

    def __post_init__(self) -> None:
        from facd.archs.spec import finite

        check_sr_params(self.n_feats, self.n_blocks, self.n_colors, self.rgb_range)
        if not finite(self.res_scale):
            raise ConfigError(
                f"res_scale must be a finite number, got {short_repr(self.res_scale)}"
            )


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


def _legacy_n_groups(value: Any, where: str) -> None:
    """Metadata written before the registry stored ``n_groups: 0`` for EDSR."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"'{where}' must be an integer >= 0, got {value!r}"[:120])


def _legacy_reduction(value: Any, where: str) -> None:
    """... and RCAN's ``reduction`` (unused by EDSR)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"reduction must be >= 1, got {value!r}"[:120])


class EDSRArch(SRFamily):
    name = "edsr"
    title = "EDSR"
    signature_keys = ("head.0.weight",)
    params_type = EDSRParams
    presets = {
        "edsr-t": dict(n_blocks=32, n_feats=256, res_scale=0.1),
        "edsr-s": dict(n_blocks=16, n_feats=64, res_scale=1.0),
        "edsr-t16": dict(n_blocks=16, n_feats=256, res_scale=0.1),
        # Small networks for CPU work and tests.
        "edsr-tiny-t": dict(n_blocks=6, n_feats=32, res_scale=1.0),
        "edsr-tiny-s": dict(n_blocks=4, n_feats=16, res_scale=1.0),
    }
    legacy_keys = {"n_groups": _legacy_n_groups, "reduction": _legacy_reduction}
    plain = True

    def basicsr_body_key(self, key: str, sd: Mapping[str, Any]) -> str:
        """BasicSR's ResidualBlockNoBN ``body.{i}.conv1|conv2`` is ``body.{i}.body.0|2``."""
        key = re.sub(r"^body\.(\d+)\.conv1\.", r"body.\1.body.0.", key)
        return re.sub(r"^body\.(\d+)\.conv2\.", r"body.\1.body.2.", key)

    def official_body_key(self, key: str, spec: ArchSpec) -> str:
        key = re.sub(r"^body\.(\d+)\.body\.0\.", r"body.\1.conv1.", key)
        return re.sub(r"^body\.(\d+)\.body\.2\.", r"body.\1.conv2.", key)

    def detect_body(self, sd: Shapes, n_feats: int, source: str) -> dict[str, Any] | None:
        """``n_blocks`` by counting the ResBlocks. ``res_scale`` leaves no trace in the weights:
        facd's files store it in their metadata, and for other files it is 0.1 for 256-channel
        EDSR (the official EDSR) and 1 otherwise."""
        n_blocks = count_indices(sd, r"^body\.(\d+)\.body\.0\.weight$")
        if n_blocks == 0:
            return None
        return {"n_blocks": n_blocks, "res_scale": 0.1 if n_feats >= 256 else 1.0}

    def build(self, spec: ArchSpec) -> nn.Module:
        return EDSR(spec)

    def describe(self, spec: ArchSpec) -> str:
        return (
            f"EDSR x{spec.scale}: {spec.n_blocks} ResBlocks, {spec.n_feats} channels, "
            f"res_scale {spec.res_scale:g}"
        )

    def match_fields(self, spec: ArchSpec) -> list[str]:
        """``res_scale`` leaves no trace in the weights, so a file cannot contradict it."""
        return ["n_feats", "n_colors", "n_blocks"]

    def body_convs(self, spec: ArchSpec) -> int:
        return 2 * spec.n_blocks + 1

    def body_size(self, spec: ArchSpec) -> tuple[int, int]:
        return 2 * spec.n_blocks, spec.n_blocks * 2 * conv(spec.n_feats, spec.n_feats, 3)

    def taps(self, spec: ArchSpec) -> list[TapPoint]:
        """FAKD splits the blocks 5/5/6 (16) and 10/11/11 (32): the remainder goes to the later
        thirds. ``body_out`` is the body-end conv plus the global skip (FAKD's third tap)."""
        q, r = divmod(spec.n_blocks, 3)
        sizes = [q] * (3 - r) + [q + 1] * r
        a, b = max(sizes[0], 1), max(sizes[0] + sizes[1], 1)
        return [TapPoint(p, spec.n_feats) for p in (f"body.{a - 1}", f"body.{b - 1}", "body_out")]

    def tiling(self, spec: ArchSpec) -> Tiling:
        return self.sr_tiling(spec, exact=True)


ARCH = register(EDSRArch())
