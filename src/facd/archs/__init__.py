"""Super-resolution architectures: one declaration per family (EDSR, RCAN, SwinIR), a registry,
their presets, checkpoint formats and detection. See :mod:`facd.archs.registry`."""

from __future__ import annotations

from typing import Any

from torch import nn

from facd.archs.registry import Architecture, TapPoint, Tiling, get_arch, register
from facd.archs.spec import PRESETS, ArchSpec, preset_spec


def build_model(spec: ArchSpec) -> nn.Module:
    """Build an untrained network from its spec (through its architecture's declaration)."""
    return get_arch(spec.arch).build(spec)


def spec_of_module(model: Any) -> ArchSpec | None:
    """The :class:`ArchSpec` of a network built by facd (None for any other module)."""
    from facd.archs.registry import architectures

    for attr in ("arch_spec", "spec"):
        spec = getattr(model, attr, None)
        if isinstance(spec, ArchSpec):
            return spec
        for arch in architectures():
            if spec is not None and isinstance(spec, arch.params_type) and hasattr(spec, "scale"):
                return ArchSpec(arch.name, spec.scale, spec)
    return None


__all__ = [
    "PRESETS",
    "ArchSpec",
    "Architecture",
    "TapPoint",
    "Tiling",
    "build_model",
    "get_arch",
    "preset_spec",
    "register",
    "spec_of_module",
]
