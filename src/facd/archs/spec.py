"""Typed architecture descriptions and the named presets of the paper's Table 1."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

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
            raise ConfigError(
                f"unknown architecture {_short(self.arch)}; expected 'edsr' or 'rcan'"
            )
        if self.scale not in SUPPORTED_SCALES:
            raise ConfigError(
                f"scale {_short(self.scale)} is not supported; expected one of {SUPPORTED_SCALES}"
            )
        if self.n_feats < 1 or self.n_blocks < 1:
            raise ConfigError(
                f"n_feats and n_blocks must be >= 1, got {_short(self.n_feats)}, "
                f"{_short(self.n_blocks)}"
            )
        if self.arch == "rcan" and self.n_groups < 1:
            raise ConfigError(f"rcan needs n_groups >= 1, got {_short(self.n_groups)}")
        if self.n_groups < 0:
            raise ConfigError(f"n_groups must be >= 0, got {_short(self.n_groups)}")
        if self.reduction < 1:
            raise ConfigError(f"reduction must be >= 1, got {_short(self.reduction)}")
        if self.n_colors != 3:
            raise ConfigError(
                f"n_colors must be 3 (RGB networks only), got {_short(self.n_colors)}"
            )
        if not _finite(self.res_scale):
            raise ConfigError(f"res_scale must be a finite number, got {_short(self.res_scale)}")
        if not (_finite(self.rgb_range) and self.rgb_range > 0):
            raise ConfigError(
                f"rgb_range must be a finite number > 0, got {_short(self.rgb_range)}"
            )
        if self.arch == "rcan" and self.n_feats // self.reduction < 1:
            raise ConfigError(
                f"rcan n_feats {self.n_feats} is smaller than reduction {self.reduction}"
            )

    def with_scale(self, scale: int) -> ArchSpec:
        return replace(self, scale=scale)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> ArchSpec:
        """Build from untrusted data (a checkpoint's metadata): every field's type is checked.

        ``arch`` and ``scale`` are required; other fields take their defaults. Integers must be
        plain ints (not bools or floats); floats may be ints or floats, never bools.
        """
        if not isinstance(data, dict):
            raise CheckpointError(
                f"architecture must be a JSON object, got {type(data).__name__} {_short(data)}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in set(data) - known)
        if unknown:
            raise CheckpointError(f"unknown architecture field(s) {_short(unknown)}")
        missing = [name for name in ("arch", "scale") if name not in data]
        if missing:
            raise CheckpointError(f"architecture field(s) {missing} missing")
        for name, value in data.items():
            kind = _FIELD_KINDS[name]
            accepted = (int, float) if kind is float else kind
            if isinstance(value, bool) or not isinstance(value, accepted):
                expected = {str: "a string", int: "an integer", float: "a number"}[kind]
                raise CheckpointError(
                    f"architecture field {name!r} must be {expected}, got "
                    f"{type(value).__name__} {_short(value)}"
                )
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        """Parse untrusted JSON; any defect is a one-line :class:`CheckpointError`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise CheckpointError(
                f"architecture is not valid JSON ({err.msg} at character {err.pos})"
            ) from None
        except (ValueError, RecursionError) as err:  # nesting too deep, an int too long
            reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)[:80]
            raise CheckpointError(f"architecture is not valid JSON ({reason})") from None
        return cls.from_dict(data)

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


_FIELD_KINDS: dict[str, type] = {
    "arch": str,
    "scale": int,
    "n_feats": int,
    "n_blocks": int,
    "n_groups": int,
    "res_scale": float,
    "reduction": int,
    "n_colors": int,
    "rgb_range": float,
}


def _short(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages about untrusted values."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def layout_size(spec: ArchSpec) -> tuple[int, int]:
    """``(tensors, parameters)`` of the network ``spec`` describes, without the two frozen
    MeanShift convs (which official and BasicSR files may omit).

    Computed from the layout alone (nothing is built or allocated), so a checkpoint's claims can
    be checked against what its file holds first. Every conv has a weight and a bias.
    """

    def conv(cin: int, cout: int, k: int) -> int:
        return cin * cout * k * k + cout

    f, c = spec.n_feats, spec.n_colors
    stages = spec.scale.bit_length() - 1 if spec.scale & (spec.scale - 1) == 0 else 1
    up = 4 * f if spec.scale & (spec.scale - 1) == 0 else 9 * f
    convs = 3 + stages  # head, body-end conv, tail conv, upsampler convs
    params = conv(c, f, 3) + conv(f, f, 3) + conv(f, c, 3) + stages * conv(f, up, 3)
    if spec.arch == "edsr":
        convs += 2 * spec.n_blocks
        params += spec.n_blocks * 2 * conv(f, f, 3)
    else:
        squeeze = f // spec.reduction
        rcab = 2 * conv(f, f, 3) + conv(f, squeeze, 1) + conv(squeeze, f, 1)
        convs += spec.n_groups * (4 * spec.n_blocks + 1)
        params += spec.n_groups * (spec.n_blocks * rcab + conv(f, f, 3))
    return 2 * convs, params


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
