"""The ``student:`` / ``teacher:`` sections of a training config.

A network is a ``preset`` (or a bare ``arch``), with ``options`` over the preset's
hyperparameters. The options belong to the architecture: its declaration
(:mod:`facd.archs.registry`) checks their names, types and values, so this section does not grow
with each architecture::

    student: {preset: swinir-tiny-s}
    student: {preset: swinir-s, options: {depths: [6, 6], num_heads: [6, 6]}}
    student: {arch: edsr, options: {n_blocks: 3, n_feats: 12}}

``n_feats``, ``n_blocks``, ``n_groups``, ``res_scale`` and ``reduction`` at the top of the
section are the EDSR/RCAN shorthand that configs used before ``options`` existed (``n_feats: 8``
is ``options: {n_feats: 8}``); they stay for those files and no other architecture adds keys
here. A value in ``options`` wins over the same shorthand key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facd.archs.registry import get_arch, names
from facd.archs.spec import PRESETS, ArchSpec, preset_spec
from facd.errors import ConfigError
from facd.typedconfig import field, short_repr

#: The EDSR/RCAN shorthand keys (see the module docstring).
SHORTHAND = ("n_feats", "n_blocks", "n_groups", "res_scale", "reduction")


def _path_field(help: str) -> Any:  # noqa: A002
    """A path-valued key (read against the config file's folder where typedconfig does that)."""
    try:
        return field(None, help, path=True)
    except TypeError:  # a typedconfig without path keys
        return field(None, help)


@dataclass
class NetConfig:
    """A network: a preset (or an architecture) with optional options, and optional weights."""

    preset: str | None = field(None, f"one of: {', '.join(PRESETS)}")
    arch: str | None = field(None, f"architecture when no preset is given: {', '.join(names())}")
    options: dict[str, Any] | None = field(
        None,
        "hyperparameters over the preset's, checked by the architecture (e.g. EDSR "
        "{n_feats: 32}, SwinIR {embed_dim: 60, depths: [6, 6, 6, 6]}); see docs/architectures.md",
    )
    n_feats: int | None = field(None, "channels (EDSR/RCAN shorthand)", ge=1, le=4096)
    n_blocks: int | None = field(
        None, "ResBlocks (EDSR) or RCABs per group (RCAN) (shorthand)", ge=1, le=1024
    )
    n_groups: int | None = field(None, "residual groups (RCAN shorthand)", ge=1, le=1024)
    res_scale: float | None = field(None, "residual scaling (EDSR shorthand)", gt=0, le=1)
    reduction: int | None = field(
        None, "channel-attention reduction (RCAN shorthand)", ge=1, le=4096
    )
    weights: str | None = _path_field("checkpoint to load (teacher: required for distillation)")
    taps: list[str] | None = field(
        None, "module paths of the feature taps; default: the architecture's three"
    )

    def validate(self, where: str) -> None:
        """Check the preset/arch and the options now (at a provisional scale), so a bad option
        fails when the config is loaded, before anything is written."""
        self._where = where or "net"
        if self.preset is not None and self.preset not in PRESETS:
            raise ConfigError(
                f"'{where}.preset' is {short_repr(self.preset)}; known presets: {', '.join(PRESETS)}"
            )
        if self.preset is None and self.arch is None:
            raise ConfigError(f"'{where}' needs a 'preset' or an 'arch'")
        if self.arch is not None and self.arch not in names():
            raise ConfigError(
                f"'{where}.arch' is {short_repr(self.arch)}; known architectures: "
                f"{', '.join(names())}"
            )
        arch = PRESETS[self.preset]["arch"] if self.preset else self.arch
        assert arch is not None
        scales = get_arch(arch).scales
        self.spec(4 if 4 in scales else scales[0])

    def spec(self, scale: int) -> ArchSpec:
        """The network's :class:`ArchSpec` at ``scale``: preset, then shorthand, then options."""
        where = getattr(self, "_where", "net")
        if self.preset:
            base = preset_spec(self.preset, scale)
            arch, values = base.arch, base.options()
            if self.arch is not None and self.arch != arch:
                raise ConfigError(
                    f"'{where}.arch' is {self.arch!r} but preset {self.preset!r} is {arch!r}; "
                    "give one of them"
                )
        else:
            arch, values = str(self.arch), {}
        decl = get_arch(arch)
        shorthand = {n: getattr(self, n) for n in SHORTHAND if getattr(self, n) is not None}
        try:
            values.update(decl.check_values(shorthand, where))
            values.update(decl.check_values(self.options or {}, f"{where}.options"))
            params = decl.params_from_dict(scale, values, where)
        except ConfigError as err:
            text = str(err)
            raise ConfigError(text if where in text else f"'{where}': {text}") from None
        return ArchSpec(arch, scale, params)
