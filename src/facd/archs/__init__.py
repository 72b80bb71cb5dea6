"""EDSR and RCAN, their presets, checkpoint formats and architecture detection."""

from __future__ import annotations

from facd.archs.spec import PRESETS, ArchSpec, preset_spec


def build_model(spec: ArchSpec):
    """Build an untrained network from its spec."""
    if spec.arch == "edsr":
        from facd.archs.edsr import EDSR

        return EDSR(spec)
    from facd.archs.rcan import RCAN

    return RCAN(spec)


__all__ = ["PRESETS", "ArchSpec", "build_model", "preset_spec"]
