"""The architecture descriptor every part of facd passes around, and the named presets.

:class:`ArchSpec` is small and common to all architectures: the architecture's name, the scale
and ``params``, the typed hyperparameter dataclass that the architecture's declaration
(:mod:`facd.archs.registry`) owns (``EDSRParams``, ``RCANParams``, ``SwinIRSpec``). Adding an
architecture adds no field here.

Compatibility: ``ArchSpec("edsr", 4, n_feats=8)`` builds the params from keywords, and reading
``spec.n_feats`` (any hyperparameter) is forwarded to ``spec.params``. facd's checkpoint metadata
(``facd.arch``) is the flat JSON ``{"arch", "scale", **params}``; files written before the
registry (EDSR with ``n_groups``/``reduction``, RCAN with ``res_scale``) still read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from facd.archs.registry import Architecture, all_presets, get_arch
from facd.errors import CheckpointError, ConfigError, FacdError

#: Scales that some architecture supports (each declaration lists its own).
SUPPORTED_SCALES = (2, 3, 4, 8)
DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


@dataclass(frozen=True, init=False)
class ArchSpec:
    """Everything needed to build a network: architecture, scale and typed hyperparameters."""

    arch: str
    scale: int
    params: Any

    def __init__(self, arch: str, scale: int, params: Any = None, **options: Any) -> None:
        decl = get_arch(arch)
        if isinstance(scale, bool) or not isinstance(scale, int) or scale not in decl.scales:
            raise ConfigError(
                f"scale {_short(scale)} is not supported; expected one of {decl.scales}"
            )
        if params is None:
            params = decl.params_from_dict(scale, options, arch)
        elif options:
            raise TypeError("ArchSpec takes params or keyword options, not both")
        elif not isinstance(params, decl.params_type):
            raise TypeError(f"{arch} params must be {decl.params_type.__name__}")
        if getattr(params, "scale", scale) != scale:
            raise ConfigError(f"{arch} params are for x{params.scale}, not x{scale}")
        object.__setattr__(self, "arch", arch)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "params", params)

    def __getattr__(self, name: str) -> Any:
        """Hyperparameters read as attributes (``spec.n_feats``), forwarded to ``params``."""
        if name.startswith("__") or name in ("arch", "scale", "params"):
            raise AttributeError(name)
        try:
            return getattr(self.params, name)
        except AttributeError:
            raise AttributeError(
                f"{self.arch} spec has no attribute {name!r}; its hyperparameters: "
                f"{', '.join(self.declaration.option_names())}"
            ) from None

    @property
    def declaration(self) -> Architecture:
        return get_arch(self.arch)

    def with_scale(self, scale: int) -> ArchSpec:
        params = self.params
        if hasattr(params, "scale"):
            from dataclasses import replace

            params = replace(params, scale=scale)
        return ArchSpec(self.arch, scale, params)

    def options(self) -> dict[str, Any]:
        """The hyperparameters as plain values (lists for tuples), without the scale."""
        return self.declaration.params_to_dict(self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, "scale": self.scale, **self.options()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> ArchSpec:
        """Build from untrusted data (a checkpoint's metadata): every field's type is checked.

        ``arch`` and ``scale`` are required; the other keys go to the architecture's declaration,
        which checks their types (integers must be plain ints, floats ints or floats, never
        bools) and values. Any defect is a one-line :class:`CheckpointError`.
        """
        if not isinstance(data, dict):
            raise CheckpointError(
                f"architecture must be a JSON object, got {type(data).__name__} {_short(data)}"
            )
        missing = [name for name in ("arch", "scale") if name not in data]
        if missing:
            raise CheckpointError(f"architecture field(s) {missing} missing")
        arch, scale = data["arch"], data["scale"]
        if not isinstance(arch, str):
            raise CheckpointError(
                f"architecture field 'arch' must be a string, got {type(arch).__name__} "
                f"{_short(arch)}"
            )
        if isinstance(scale, bool) or not isinstance(scale, int):
            raise CheckpointError(
                f"architecture field 'scale' must be an integer, got {type(scale).__name__} "
                f"{_short(scale)}"
            )
        rest = {str(k): v for k, v in data.items() if k not in ("arch", "scale")}
        try:
            decl = get_arch(arch)
            if scale not in decl.scales:
                raise ConfigError(
                    f"scale {_short(scale)} is not supported; expected one of {decl.scales}"
                )
            return cls(arch, scale, decl.params_from_dict(scale, rest, "architecture"))
        except FacdError as err:
            raise CheckpointError(str(err)) from None

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
        return self.declaration.describe(self)


def _short(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages about untrusted values."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def layout_size(spec: ArchSpec) -> tuple[int, int]:
    """``(tensors, parameters)`` of the network ``spec`` describes, from its declaration
    (nothing is built), without the constants a file may omit."""
    return spec.declaration.layout_size(spec)


class _Presets(Mapping[str, dict]):
    """Every registered preset: name -> ``dict(arch=..., **hyperparameters)`` (no scale)."""

    def __getitem__(self, name: str) -> dict:
        arch, values = all_presets()[name]
        return dict(arch=arch, **values)

    def __iter__(self) -> Iterator[str]:
        return iter(all_presets())

    def __len__(self) -> int:
        return len(all_presets())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in all_presets()


#: Presets without a scale; the scale is given separately (``edsr-s`` at x4 and so on).
PRESETS: Mapping[str, dict] = _Presets()


def preset_spec(name: str, scale: int) -> ArchSpec:
    """The :class:`ArchSpec` of a named preset at ``scale``."""
    presets = all_presets()
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(presets)}")
    arch, values = presets[name]
    decl = get_arch(arch)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in decl.scales:
        raise ConfigError(f"scale {_short(scale)} is not supported; expected one of {decl.scales}")
    return ArchSpec(arch, scale, decl.make_params(scale, decl.preset_values(name, scale)))
