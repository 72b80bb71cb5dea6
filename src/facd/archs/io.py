"""Loading and saving networks safely.

facd's own checkpoints are safetensors files whose metadata holds the :class:`ArchSpec` as JSON
(key ``facd.arch``); every architecture-specific step (key layouts, detection, constants a file
may omit, the memory guard's sizes) is asked of the architecture's declaration. Official ``.pt``/``.pth`` files are read with ``torch.load(weights_only=True)``,
which refuses any pickled object that is not a tensor or a plain container, so no code runs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facd.archs.formats import (
    Shape,
    StateDict,
    detect_spec,
    shape_of,
    unwrap_state_dict,
)
from facd.archs.registry import Architecture
from facd.archs.spec import PRESETS, ArchSpec, layout_size, preset_spec
from facd.errors import CheckpointError, FacdError
from facd.fileio import atomic_write_bytes, torch_load_weights_only

ARCH_METADATA_KEY = "facd.arch"
_INTACT = "the file is damaged or was edited: use an intact copy"


def _open_safetensors(path: Path, with_tensors: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """Metadata and either the tensors or (``with_tensors=False``) only their shapes."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            if with_tensors:
                return {k: f.get_tensor(k) for k in f.keys()}, meta  # noqa: SIM118
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}, meta  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, TypeError) as err:
        reason = " ".join(str(err).split())[:160]
        raise CheckpointError(f"{path}: not a valid safetensors file ({reason})") from None


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")


def read_checkpoint(path: str | Path) -> tuple[StateDict, dict[str, str]]:
    """Read tensors and metadata from a safetensors or a ``.pt``/``.pth`` file, without pickle code."""
    path = Path(path)
    _check_file(path)
    if path.suffix == ".safetensors":
        return _open_safetensors(path, with_tensors=True)
    obj = torch_load_weights_only(path)
    return unwrap_state_dict(obj, source=str(path)), {}


def read_shapes(path: str | Path) -> tuple[dict[str, Shape], dict[str, str]]:
    """Tensor shapes and metadata. A safetensors file's tensors are not read (its header gives
    the shapes); a ``.pt`` file has no header, so it is loaded (its size bounds the memory)."""
    path = Path(path)
    _check_file(path)
    if path.suffix == ".safetensors":
        return _open_safetensors(path, with_tensors=False)
    sd, meta = read_checkpoint(path)
    return {k: shape_of(v) for k, v in sd.items()}, meta


def spec_from_checkpoint(
    sd: dict[str, torch.Tensor] | dict[str, Shape], meta: dict[str, str], source: str
) -> ArchSpec:
    """The checkpoint's :class:`ArchSpec`, checked against its tensors' shapes.

    Metadata is untrusted: malformed JSON, wrong types or impossible values, and any field that
    disagrees with the tensors (``sd`` maps names to tensors or shapes) are a one-line
    :class:`CheckpointError` naming ``source``. Files without metadata are detected from shapes.
    """
    found = detect_spec(sd, source=source)
    if ARCH_METADATA_KEY not in meta:
        return found
    where = f"{source}: metadata {ARCH_METADATA_KEY!r}"
    try:
        spec = ArchSpec.from_json(meta[ARCH_METADATA_KEY])
    except FacdError as err:
        raise CheckpointError(f"{where} is invalid: {err}; {_INTACT}") from None
    diff: tuple[str, Any, Any] | None = None
    for name in ("arch", "scale"):
        if getattr(spec, name) != getattr(found, name):
            diff = (name, getattr(spec, name), getattr(found, name))
            break
    if diff is None:
        diff = spec.declaration.metadata_mismatch(spec, found)
    if diff is not None:
        name, claimed, actual = diff
        raise CheckpointError(
            f"{where} says {name} = {claimed!r}, but the tensors have {actual!r}; {_INTACT}"
        )
    return spec


def check_before_build(spec: ArchSpec, shapes: dict[str, Shape], source: str) -> None:
    """Check a file's tensor names and shapes against ``spec`` before anything is allocated.

    First the number of tensors computed from ``spec`` (its declaration's ``layout_size``) must
    be within twice what the file holds, plus 16 (so a few hundred KB cannot ask for gigabytes,
    even where the metadata and the detected shapes agree, e.g. a lone ``body.63.*`` key); then,
    with that bounded, the network is built on the meta device (no memory) and compared key by
    key, so that a file missing a few tensors gets their names, and its number of values must
    equal the file's.
    """
    from facd.archs import build_model

    decl = spec.declaration
    shapes = decl.to_official(shapes)
    tensors, params = layout_size(spec)
    held = {k: s for k, s in shapes.items() if not k.startswith(decl.optional_keys or ("\0",))}
    held_params = sum(math.prod(s) for s in held.values())
    if tensors > 2 * len(held) + 16:  # a file far too small for its claim: nothing is built
        raise CheckpointError(
            f"{source}: {spec.describe()} needs {tensors:,} tensors with {params:,} parameters "
            f"but the file holds {len(held):,} with {held_params:,}; refusing to build it"
        )
    with torch.device("meta"):
        own = build_model(spec).state_dict()
    _compare_shapes({k: tuple(v.shape) for k, v in own.items()}, shapes, source, decl)
    if params != held_params:  # implied by the comparison; kept as the guard's last word
        raise CheckpointError(
            f"{source}: {spec.describe()} needs {params:,} parameters but the file holds "
            f"{held_params:,}; refusing to build it"
        )


def _compare_shapes(
    own: dict[str, Shape], found: dict[str, Shape], source: str, decl: Architecture
) -> None:
    """Strict key and shape comparison; the declaration's optional constants may be absent."""
    found = dict(found)
    optional = decl.optional_keys
    for key in own:
        if optional and key.startswith(optional) and key not in found:
            found[key] = own[key]
    missing = sorted(set(own) - set(found))
    unexpected = sorted(set(found) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: keys do not match the architecture: missing {missing[:4]}"
            f"{' ...' if len(missing) > 4 else ''}, unexpected {[k[:60] for k in unexpected[:4]]}"
            f"{' ...' if len(unexpected) > 4 else ''}"
        )
    for key, shape in found.items():
        if tuple(own[key]) != tuple(shape):
            raise CheckpointError(
                f"{source}: tensor {key!r} has shape {tuple(shape)}, expected {tuple(own[key])}"
            )


def load_weights(
    model: nn.Module, sd: StateDict, source: str, spec: ArchSpec | None = None
) -> None:
    """Strict load; the only keys allowed to be absent are the declaration's constants."""
    from facd.archs import spec_of_module

    spec = spec or spec_of_module(model)
    if spec is None:
        raise CheckpointError(f"{source}: cannot load into a network not built by facd")
    decl = spec.declaration
    sd = decl.to_official(sd)
    own = model.state_dict()
    _compare_shapes(
        {k: tuple(v.shape) for k, v in own.items()},
        {k: shape_of(v) for k, v in sd.items()},
        source,
        decl,
    )
    decl.check_buffers(model, sd, source)
    sd = dict(sd)
    for key in own:
        if decl.optional_keys and key.startswith(decl.optional_keys) and key not in sd:
            sd[key] = own[key]
    model.load_state_dict(sd, strict=True)


def load_model(
    ref: str | Path, scale: int | None = None, *, expect: ArchSpec | None = None
) -> tuple[nn.Module, ArchSpec]:
    """Build a network from a preset name (untrained) or a checkpoint file.

    ``scale`` is required for presets and, for files, must match the detected scale.
    ``expect`` (for configs that name both an architecture and a file) must match the file.
    Files: facd safetensors (metadata ``facd.arch``), official EDSR/RCAN ``.pt``, BasicSR
    ``.pth`` and official SwinIR ``{"params"|"params_ema": ...}`` files; ``facd-asset:NAME`` for
    a file shipped with facd.
    """
    from facd.archs import build_model

    ref_str = str(ref)
    if ref_str in PRESETS:
        if scale is None:
            from facd.messages import option

            raise CheckpointError(f"preset {ref_str!r} needs a scale, e.g. {option('scale', 4)}")
        spec = preset_spec(ref_str, scale)
        return build_model(spec), spec
    from facd.assets import resolve_asset

    path = resolve_asset(ref_str)  # facd-asset:NAME names a file shipped with facd
    if not path.exists():
        raise CheckpointError(
            f"model {ref_str!r} is neither a file nor a preset (presets: {', '.join(PRESETS)})"
        )
    if path.suffix == ".safetensors":  # the header only: nothing is allocated yet
        sd, (shapes, meta) = None, read_shapes(path)
    else:  # no header to read first; the tensors take no more memory than the file's size
        sd, meta = read_checkpoint(path)
        shapes = {k: shape_of(v) for k, v in sd.items()}
    spec = spec_from_checkpoint(shapes, meta, str(path))
    if scale is not None and spec.scale != scale:
        raise CheckpointError(f"{path}: checkpoint is x{spec.scale}, but x{scale} was asked for")
    if expect is not None:
        check_spec_matches(spec, expect, str(path))
    check_before_build(spec, shapes, str(path))
    if sd is None:
        sd, _ = read_checkpoint(path)
    model = build_model(spec)
    load_weights(model, sd, str(path), spec)
    return model, spec


def check_spec_matches(found: ArchSpec, expected: ArchSpec, source: str) -> None:
    """Raise a one-line error listing each field where ``found`` differs from ``expected``."""
    diffs = [
        f"{name}: expected {getattr(expected, name)!r}, found {getattr(found, name)!r}"
        for name in ("arch", "scale")
        if getattr(expected, name) != getattr(found, name)
    ]
    if found.arch == expected.arch:
        decl = expected.declaration
        diffs += [
            f"{name}: expected {getattr(expected.params, name)!r}, "
            f"found {getattr(found.params, name)!r}"
            for name in decl.match_fields(expected)
            if name != "n_colors" and getattr(expected.params, name) != getattr(found.params, name)
        ]
    if diffs:
        raise CheckpointError(
            f"{source}: architecture does not match the config ({'; '.join(diffs)})"
        )


def save_model(
    path: str | Path,
    model: nn.Module,
    spec: ArchSpec | None = None,
    extra_metadata: dict[str, Any] | None = None,
) -> None:
    """Write the network's weights as safetensors (atomically) with its spec in the metadata.

    ``spec`` defaults to the network's own (``model.spec`` of a network built by facd)."""
    from safetensors.torch import save

    from facd.archs import spec_of_module

    spec = spec or spec_of_module(model)
    if spec is None:
        raise CheckpointError(
            f"{path}: {type(model).__name__} has no .spec; pass its ArchSpec, "
            "save_model(path, model, spec)"
        )
    meta = {ARCH_METADATA_KEY: spec.to_json(), "format": "facd"}
    for key, value in (extra_metadata or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write_bytes(path, save(tensors, metadata=meta))
