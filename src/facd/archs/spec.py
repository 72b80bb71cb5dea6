"""The named presets and small helpers around :class:`ArchSpec`.

:class:`ArchSpec` (the architecture's name, the scale and ``params``, the typed hyperparameter
dataclass that the architecture's declaration owns) is defined beside that declaration in
:mod:`facd.archs.registry`; it is importable from here as before.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from facd.archs.registry import ArchSpec, all_presets, get_arch
from facd.errors import ConfigError
from facd.messages import UntrainedWeightsWarning, untrained_message, warn
from facd.typedconfig import short_repr

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


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


def warn_untrained(model: object) -> bool:
    """Warn if ``model`` names a preset (built untrained); returns whether it did."""
    if not isinstance(model, str) or model not in PRESETS:
        return False
    warn(untrained_message(model), UntrainedWeightsWarning)
    return True


def preset_spec(name: str, scale: int) -> ArchSpec:
    """The :class:`ArchSpec` of a named preset at ``scale``."""
    presets = all_presets()
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(presets)}")
    arch, values = presets[name]
    decl = get_arch(arch)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in decl.scales:
        raise ConfigError(
            f"scale {short_repr(scale)} is not supported; expected one of {decl.scales}"
        )
    return ArchSpec(arch, scale, decl.make_params(scale, decl.preset_values(name, scale)))
