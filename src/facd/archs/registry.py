"""The architecture registry: one :class:`Architecture` declaration per network family.

A declaration says everything facd needs to know about an architecture, in one module:

* ``name``, ``title`` (how messages and reports name it), ``params_type`` (the typed
  hyperparameter dataclass), ``presets`` and ``scales``;
* ``build(spec)``: the untrained network;
* checkpoint handling: ``claims(shapes)`` (does a state dict look like this family?),
  ``detect(shapes, source)`` (hyperparameters from tensor names and shapes),
  ``to_official(sd)`` (other key layouts, e.g. BasicSR, renamed to the official one),
  ``optional_keys`` (constants a file may omit), ``params_from_dict`` (facd's metadata) and
  ``signature_keys`` (the keys that mark its files, for the message about a file of no family);
* ``export_layouts`` and ``export_layout(layout, spec, sd)``: what ``facd export --layout``
  writes, the inverse of the reading above (other code's key names and container);
* ``taps(spec)``: the default distillation taps with their channel counts (no dry run);
* ``tiling(spec)``: the tile margin and whether tiling is exact (or its tolerance);
* ``layout_size(spec)``: tensors and parameters from the spec alone (the memory guard).

Built-in declarations live in the modules of ``facd.archs``, each registering its own
(``ARCH = register(EDSRArch())``), as code outside the package does with :func:`register`. The
registry (:data:`ARCHS`, a :class:`facd.registry.Registry`) names those modules in its
``builtin`` list and imports them on first use: adding an architecture means adding one module
and its name there.

:class:`ArchSpec`, the descriptor every part of facd passes around, lives here too, beside the
declaration it names (the two refer to each other): the architecture's name, the scale and
``params``, the declaration's typed hyperparameter dataclass (``EDSRParams``, ``RCANParams``,
``SwinIRSpec``). Adding an architecture adds no field to it. Compatibility:
``ArchSpec("edsr", 4, n_feats=8)`` builds the params from keywords, and reading
``spec.n_feats`` (any hyperparameter) is forwarded to ``spec.params``. facd's checkpoint
metadata (``facd.arch``) is the flat JSON ``{"arch", "scale", **params}``; files written before
the registry (EDSR with ``n_groups``/``reduction``, RCAN with ``res_scale``) still read.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from facd.errors import CheckpointError, ConfigError, FacdError
from facd.registry import Registry
from facd.typedconfig import short_repr

Shape = tuple[int, ...]
Shapes = Mapping[str, "torch.Tensor | Shape"]


@dataclass(frozen=True)
class TapPoint:
    """A default distillation tap: a module path and the channels of its (N, C, H, W) output."""

    path: str
    channels: int


@dataclass(frozen=True)
class Tiling:
    """How tiles relate to the whole-image output.

    ``exact``: with an overlap of at least ``margin`` LR pixels the tiled output equals the
    whole-image one (up to float reordering). Otherwise tiling is approximate: ``margin`` is
    the recommended overlap and ``tolerance`` the max abs difference (outputs in [0, 1]) that
    the tests hold it to at that overlap; ``reason`` says why it cannot be exact.
    ``tail_margin``: exact overlap for tiling the upsampler alone (None: no two-stage tiling).
    ``align``: tiles start on multiples of it (a transformer's attention window).
    """

    exact: bool
    margin: int
    tolerance: float = 0.0
    reason: str = ""
    tail_margin: int | None = None
    align: int = 1

    def describe(self) -> str:
        if self.exact:
            return f"exact from overlap {self.margin} LR px"
        return (
            f"approximate ({self.reason}); overlap {self.margin} LR px, "
            f"tolerance {self.tolerance:g}"
        )


class Architecture:
    """The declaration of one architecture family (subclass it; see the module docstring)."""

    name: ClassVar[str]
    title: ClassVar[str]
    params_type: ClassVar[type]
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    scales: ClassVar[tuple[int, ...]] = (2, 3, 4, 8)
    #: the keys that mark a checkpoint of this family, for messages about one that is none
    signature_keys: ClassVar[tuple[str, ...]] = ()
    #: what the parameter count includes beyond the plain weights, for ``facd info`` ("" none)
    param_count_note: ClassVar[str] = ""
    #: key prefixes of constants that a checkpoint may leave out (filled from the network)
    optional_keys: ClassVar[tuple[str, ...]] = ()
    #: legacy metadata keys accepted and dropped when reading old files: name -> check
    legacy_keys: ClassVar[dict[str, Any]] = {}
    #: key layouts that ``facd export --layout`` writes: name -> the container and who loads it
    export_layouts: ClassVar[dict[str, str]] = {}

    # -- hyperparameters

    def make_params(self, scale: int, values: Mapping[str, Any]) -> Any:
        """The typed hyperparameters from plain values (already type-checked)."""
        return self.params_type(**values)

    def preset_values(self, name: str, scale: int) -> dict[str, Any]:
        """A preset's hyperparameters at ``scale`` (a preset may differ by scale)."""
        return dict(self.presets[name])

    def params_to_dict(self, params: Any) -> dict[str, Any]:
        """Plain JSON-able values, without the scale."""
        out = dataclasses.asdict(params)
        out.pop("scale", None)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    def option_names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.params_type) if f.name != "scale"]

    def check_values(self, data: Mapping[str, Any], where: str) -> dict[str, Any]:
        """Names and types of untrusted hyperparameters (metadata or a config's ``options``):
        unknown names and wrong types are one-line :class:`ConfigError`s naming
        ``where.key``; legacy keys are checked and dropped; tuples come back as tuples."""
        import typing

        hints = typing.get_type_hints(self.params_type)
        names = self.option_names()
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key in self.legacy_keys:
                self.legacy_keys[key](value, f"{where}.{key}")
                continue
            if key not in names:
                raise ConfigError(
                    f"unknown {self.name} option '{where}.{str(key)[:30]}'; "
                    f"known: {', '.join(names)}"
                )
            values[key] = _check_type(hints[key], value, f"{where}.{key}")
        return values

    def params_from_dict(self, scale: int, data: Mapping[str, Any], where: str) -> Any:
        """Hyperparameters from untrusted data: :meth:`check_values`, then the dataclass's own
        value checks (one-line :class:`ConfigError`s; callers turn them into CheckpointErrors
        for files)."""
        values = self.check_values(data, where)
        try:
            return self.make_params(scale, values)
        except TypeError as err:
            raise ConfigError(f"{where}: {err}") from None

    # -- the network

    def build(self, spec: ArchSpec) -> nn.Module:
        raise NotImplementedError

    def describe(self, spec: ArchSpec) -> str:
        return f"{self.title} x{spec.scale}"

    def layout_size(self, spec: ArchSpec) -> tuple[int, int]:
        """(tensors, parameters) of the state dict, from the spec alone (nothing allocated),
        without the ``optional_keys`` constants."""
        raise NotImplementedError

    def param_count(self, spec: ArchSpec) -> int:
        """Learned parameters (what ``facd info`` prints)."""
        return self.layout_size(spec)[1]

    def extra_counts(self, spec: ArchSpec) -> dict[str, int]:
        """Other published parameter counts, by label (e.g. a paper's convention)."""
        return {}

    def match_fields(self, spec: ArchSpec) -> list[str]:
        """Hyperparameters that a config's spec and a file's spec must agree on."""
        return self.option_names()

    # -- checkpoints

    def claims(self, shapes: Shapes) -> bool:
        """True when a state dict (official or another known layout) is of this family."""
        raise NotImplementedError

    def to_official(self, sd: Mapping[str, Any]) -> dict[str, Any]:
        """Rename another known layout's keys (e.g. BasicSR's) to the official ones."""
        return dict(sd)

    def detect(self, shapes: Shapes, source: str) -> ArchSpec:
        raise NotImplementedError

    def export_layout(self, layout: str, spec: ArchSpec, sd: Mapping[str, torch.Tensor]) -> Any:
        """What ``torch.save`` writes for ``layout``, one of :attr:`export_layouts`: the
        network's official state dict ``sd`` (every key of ``state_dict()``, buffers included)
        in that layout's key names and container, the inverse of :meth:`to_official` and of
        :func:`facd.archs.formats.unwrap_state_dict`. A declaration handles the layouts it
        lists and passes the rest here, which refuses them."""
        known = ", ".join(self.export_layouts) or "none"
        raise ConfigError(
            f"{self.title} cannot be written in the {layout!r} layout; its layouts: {known}"
        )

    def metadata_mismatch(self, claimed: ArchSpec, found: ArchSpec) -> tuple[str, Any, Any] | None:
        """The first hyperparameter where a file's metadata disagrees with its tensors."""
        for name in self.match_fields(claimed):
            a, b = getattr(claimed.params, name), getattr(found.params, name)
            if a != b:
                return name, a, b
        return None

    def check_buffers(self, model: nn.Module, sd: Mapping[str, torch.Tensor], source: str) -> None:
        """Refuse non-float tensors except declared integer buffers; hook for extra checks."""
        for key, value in sd.items():
            if not value.is_floating_point():
                raise CheckpointError(
                    f"{source}: tensor {key!r} holds {value.dtype}; weights must be floating point"
                )

    # -- distillation and inference

    def taps(self, spec: ArchSpec) -> list[TapPoint]:
        raise NotImplementedError

    def tiling(self, spec: ArchSpec) -> Tiling:
        raise NotImplementedError

    def default_tile(self, spec: ArchSpec) -> int:
        """Default tile core in LR pixels (a multiple of 8)."""
        return 512

    def supports_half(self, spec: ArchSpec) -> bool:
        return True

    def onnx_refusal(self, spec: ArchSpec) -> str | None:
        """Why ``facd export --onnx`` refuses this network (None: it exports)."""
        return None


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
                f"scale {short_repr(scale)} is not supported; expected one of {decl.scales}"
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
                f"architecture must be a JSON object, got {type(data).__name__} {short_repr(data)}"
            )
        missing = [name for name in ("arch", "scale") if name not in data]
        if missing:
            raise CheckpointError(f"architecture field(s) {missing} missing")
        arch, scale = data["arch"], data["scale"]
        if not isinstance(arch, str):
            raise CheckpointError(
                f"architecture field 'arch' must be a string, got {type(arch).__name__} "
                f"{short_repr(arch)}"
            )
        if isinstance(scale, bool) or not isinstance(scale, int):
            raise CheckpointError(
                f"architecture field 'scale' must be an integer, got {type(scale).__name__} "
                f"{short_repr(scale)}"
            )
        rest = {str(k): v for k, v in data.items() if k not in ("arch", "scale")}
        try:
            decl = get_arch(arch)
            if scale not in decl.scales:
                raise ConfigError(
                    f"scale {short_repr(scale)} is not supported; expected one of {decl.scales}"
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


def _check_type(tp: Any, value: Any, where: str) -> Any:
    """int (not bool), float (int or float, not bool), str, bool, tuple[int, ...]."""
    import typing

    origin = typing.get_origin(tp)
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) > 1024:
            raise ConfigError(f"'{where}' must be a list of integers, got {short_repr(value)}")
        return tuple(_check_type(int, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is typing.Literal:
        if not isinstance(value, str) or value not in typing.get_args(tp):
            choices = ", ".join(map(repr, typing.get_args(tp)))
            raise ConfigError(f"'{where}' must be one of {choices}, got {short_repr(value)}")
        return value
    kinds = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    ok = {
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        bool: lambda v: isinstance(v, bool),
    }
    if tp not in ok:
        raise ConfigError(f"'{where}': unsupported option type {tp!r}")
    if not ok[tp](value):
        raise ConfigError(
            f"'{where}' must be {kinds[tp]}, got {type(value).__name__} {short_repr(value)}"
        )
    return value


# ----------------------------------------------------------------------------- registry

#: The declarations by name. Each built-in module registers its own (``ARCH = register(...)``).
ARCHS: Registry[Architecture] = Registry(
    "architecture", builtin=("facd.archs.edsr", "facd.archs.rcan", "facd.archs.swinir")
)


def register(arch: Architecture) -> Architecture:
    """Add a declaration (built-ins register themselves; user code may add its own). A taken
    name or preset name is a one-line :class:`ConfigError`."""
    presets = all_presets()
    clash = [p for p in arch.presets if p in presets and presets[p][0] != arch.name]
    if clash:
        raise ConfigError(f"preset name(s) {clash} of {arch.name!r} are taken")
    return ARCHS.register(arch.name, arch, type(arch).__module__)


def architectures() -> Iterator[Architecture]:
    """Every registered declaration, built-ins first (edsr, rcan, swinir)."""
    return iter(ARCHS.values())


def names() -> list[str]:
    return list(ARCHS)


def get_arch(name: str) -> Architecture:
    """The declaration of architecture ``name``; a one-line ConfigError lists the known ones."""
    return ARCHS.get(name)


def supported_scales() -> tuple[int, ...]:
    """Every scale that some registered architecture supports, ascending."""
    return tuple(sorted({s for arch in architectures() for s in arch.scales}))


def families() -> str:
    """The registered architectures' titles, for messages: ``EDSR, RCAN or SwinIR``."""
    return _either([arch.title for arch in architectures()])


def signature_keys() -> str:
    """The keys that mark a checkpoint of any registered family, for messages."""
    keys = dict.fromkeys(k for arch in architectures() for k in arch.signature_keys)
    return _either([f"'{k}'" for k in keys])


def _either(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def all_presets() -> dict[str, tuple[str, dict[str, Any]]]:
    """Every preset name -> (architecture, hyperparameters without the scale)."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for arch in architectures():
        for preset, values in arch.presets.items():
            out[preset] = (arch.name, values)
    return out
