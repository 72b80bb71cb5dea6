"""Loading and saving networks safely.

facd's own checkpoints are safetensors files whose metadata holds the :class:`ArchSpec` as JSON
(key ``facd.arch``). Official ``.pt``/``.pth`` files are read with ``torch.load(weights_only=True)``,
which refuses any pickled object that is not a tensor or a plain container, so no code runs.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facd.archs.formats import StateDict, basicsr_to_official, detect_spec, unwrap_state_dict
from facd.archs.spec import PRESETS, ArchSpec, preset_spec
from facd.errors import CheckpointError
from facd.fileio import atomic_write_bytes, unpickling_reason

ARCH_METADATA_KEY = "facd.arch"


def read_checkpoint(path: str | Path) -> tuple[StateDict, dict[str, str]]:
    """Read tensors and metadata from a safetensors or a ``.pt``/``.pth`` file, without pickle code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = dict(f.metadata() or {})
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"{path}: not a valid safetensors file ({err})") from None
        return tensors, meta
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path}: refused to load: it holds pickled objects other than tensors "
            f"({unpickling_reason(err)})"
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(
            f"{path}: unreadable checkpoint ({str(err).splitlines()[0][:160]})"
        ) from None
    return unwrap_state_dict(obj, source=str(path)), {}


def spec_from_checkpoint(sd: StateDict, meta: dict[str, str], source: str) -> ArchSpec:
    if ARCH_METADATA_KEY in meta:
        return ArchSpec.from_dict(json.loads(meta[ARCH_METADATA_KEY]))
    return detect_spec(sd, source=source)


def load_weights(model: nn.Module, sd: StateDict, source: str) -> None:
    """Strict load; the only keys allowed to be absent are the constant MeanShift ones."""
    if "conv_first.weight" in sd:
        sd = basicsr_to_official(sd)
    own = model.state_dict()
    sd = dict(sd)
    for key in own:
        if key.startswith(("sub_mean.", "add_mean.")) and key not in sd:
            sd[key] = own[key]
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: keys do not match the architecture: missing {missing[:4]}"
            f"{' ...' if len(missing) > 4 else ''}, unexpected {unexpected[:4]}"
            f"{' ...' if len(unexpected) > 4 else ''}"
        )
    for key, value in sd.items():
        if tuple(own[key].shape) != tuple(value.shape):
            raise CheckpointError(
                f"{source}: tensor {key!r} has shape {tuple(value.shape)}, expected {tuple(own[key].shape)}"
            )
    model.load_state_dict(sd, strict=True)


def load_model(
    ref: str | Path, scale: int | None = None, *, expect: ArchSpec | None = None
) -> tuple[nn.Module, ArchSpec]:
    """Build a network from a preset name (untrained) or a checkpoint file.

    ``scale`` is required for presets and, for files, must match the detected scale.
    ``expect`` (for configs that name both an architecture and a file) must match the file.
    """
    from facd.archs import build_model

    ref_str = str(ref)
    if ref_str in PRESETS:
        if scale is None:
            from facd.messages import option

            raise CheckpointError(f"preset {ref_str!r} needs a scale, e.g. {option('scale', 4)}")
        spec = preset_spec(ref_str, scale)
        return build_model(spec), spec
    path = Path(ref_str)
    if not path.exists():
        raise CheckpointError(
            f"model {ref_str!r} is neither a file nor a preset (presets: {', '.join(PRESETS)})"
        )
    sd, meta = read_checkpoint(path)
    spec = spec_from_checkpoint(sd, meta, str(path))
    if scale is not None and spec.scale != scale:
        raise CheckpointError(f"{path}: checkpoint is x{spec.scale}, but x{scale} was asked for")
    if expect is not None:
        check_spec_matches(spec, expect, str(path))
    model = build_model(spec)
    load_weights(model, sd, str(path))
    return model, spec


def check_spec_matches(found: ArchSpec, expected: ArchSpec, source: str) -> None:
    """Raise a one-line error listing each field where ``found`` differs from ``expected``."""
    diffs = [
        f"{name}: expected {getattr(expected, name)!r}, found {getattr(found, name)!r}"
        for name in ("arch", "scale", "n_feats", "n_blocks", "n_groups", "reduction")
        if getattr(expected, name) != getattr(found, name)
    ]
    if diffs:
        raise CheckpointError(
            f"{source}: architecture does not match the config ({'; '.join(diffs)})"
        )


def save_model(
    path: str | Path, model: nn.Module, spec: ArchSpec, extra_metadata: dict[str, Any] | None = None
) -> None:
    """Write the network's weights as safetensors (atomically) with its spec in the metadata."""
    from safetensors.torch import save

    meta = {ARCH_METADATA_KEY: spec.to_json(), "format": "facd"}
    for key, value in (extra_metadata or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write_bytes(path, save(tensors, metadata=meta))


def with_res_scale(spec: ArchSpec, res_scale: float) -> ArchSpec:
    return replace(spec, res_scale=res_scale)
