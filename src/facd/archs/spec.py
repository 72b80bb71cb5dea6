"""Typed architecture descriptions and the named presets of the paper's Table 1."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Literal

from facd.errors import CheckpointError, ConfigError

ArchName = Literal["edsr", "rcan"]
SUPPORTED_SCALES = (2, 3, 4, 8)
DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


@dataclass(frozen=True)
class ArchSpec:
    """Everything needed to build a network: the architecture and its hyperparameters.

    ``n_blocks`` counts ResBlocks (EDSR) or RCABs per residual group (RCAN).
    ``n_groups`` is only meaningful for RCAN (0 for EDSR).
    """

    arch: ArchName
    scale: int
    n_feats: int = 64
    n_blocks: int = 16
    n_groups: int = 0
    res_scale: float = 1.0
    reduction: int = 16
    n_colors: int = 3
    rgb_range: float = 255.0

    def __post_init__(self) -> None:
        if self.arch not in ("edsr", "rcan"):
            raise ConfigError(f"unknown architecture {self.arch!r}; expected 'edsr' or 'rcan'")
        if self.scale not in SUPPORTED_SCALES:
            raise ConfigError(
                f"scale {self.scale} is not supported; expected one of {SUPPORTED_SCALES}"
            )
        if self.n_feats < 1 or self.n_blocks < 1:
            raise ConfigError(
                f"n_feats and n_blocks must be >= 1, got {self.n_feats}, {self.n_blocks}"
            )
        if self.arch == "rcan" and self.n_groups < 1:
            raise ConfigError(f"rcan needs n_groups >= 1, got {self.n_groups}")
        if self.arch == "rcan" and self.n_feats // self.reduction < 1:
            raise ConfigError(
                f"rcan n_feats {self.n_feats} is smaller than reduction {self.reduction}"
            )

    def with_scale(self, scale: int) -> ArchSpec:
        return replace(self, scale=scale)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> ArchSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CheckpointError(f"unknown architecture field(s) {unknown}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        return cls.from_dict(json.loads(text))

    def describe(self) -> str:
        if self.arch == "edsr":
            body = (
                f"{self.n_blocks} ResBlocks, {self.n_feats} channels, res_scale {self.res_scale:g}"
            )
        else:
            body = (
                f"{self.n_groups} groups x {self.n_blocks} RCABs, {self.n_feats} channels, "
                f"reduction {self.reduction}"
            )
        return f"{self.arch.upper()} x{self.scale}: {body}"


# Presets without a scale; the scale is given separately (``edsr-s`` at x4 and so on).
PRESETS: dict[str, dict] = {
    "edsr-t": dict(arch="edsr", n_blocks=32, n_feats=256, res_scale=0.1),
    "edsr-s": dict(arch="edsr", n_blocks=16, n_feats=64, res_scale=1.0),
    "edsr-t16": dict(arch="edsr", n_blocks=16, n_feats=256, res_scale=0.1),
    "rcan-t": dict(arch="rcan", n_groups=10, n_blocks=20, n_feats=64, reduction=16),
    "rcan-s": dict(arch="rcan", n_groups=10, n_blocks=6, n_feats=64, reduction=16),
    # Small networks for CPU work and tests.
    "edsr-tiny-t": dict(arch="edsr", n_blocks=6, n_feats=32, res_scale=1.0),
    "edsr-tiny-s": dict(arch="edsr", n_blocks=4, n_feats=16, res_scale=1.0),
    "rcan-tiny-t": dict(arch="rcan", n_groups=3, n_blocks=3, n_feats=32, reduction=8),
    "rcan-tiny-s": dict(arch="rcan", n_groups=3, n_blocks=1, n_feats=16, reduction=8),
}


def preset_spec(name: str, scale: int) -> ArchSpec:
    """The :class:`ArchSpec` of a named preset at ``scale``."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    return ArchSpec(scale=scale, **PRESETS[name])
