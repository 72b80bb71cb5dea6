"""Checkpoint files of any architecture: the state dict inside a container, and detection.

:func:`unwrap_state_dict` finds the flat tensor dict inside BasicSR/Lightning-style containers;
:func:`detect_spec` asks every registered architecture (:mod:`facd.archs.registry`) whether a
state dict is its own and for its hyperparameters. Detection reads only tensor names and shapes
(in the spirit of spandrel's ``KeyCondition``); what each architecture's names and shapes mean
is its declaration's (``claims``, ``detect``, ``to_official``: ``edsr.py``, ``rcan.py``,
``swinir.py``, and ``common.py`` for what EDSR and RCAN share).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from facd.archs.spec import ArchSpec
from facd.errors import CheckpointError

StateDict = dict[str, torch.Tensor]
Shape = tuple[int, ...]

_CONTAINER_KEYS = ("params_ema", "params", "state_dict", "model", "net", "generator")


def unwrap_state_dict(obj: object, source: str = "checkpoint") -> StateDict:
    """Return the flat tensor dict inside BasicSR/Lightning-style containers.

    BasicSR files with both ``params_ema`` and ``params`` give ``params_ema`` (the EMA weights
    BasicSR reports results with). A ``module.`` prefix from DataParallel/DDP is removed.
    """
    for _ in range(3):
        if isinstance(obj, Mapping) and not _is_tensor_dict(obj):
            inner = next((obj[k] for k in _CONTAINER_KEYS if k in obj), None)
            if inner is None:
                keys = sorted(str(k)[:40] for k in obj)[:8]
                raise CheckpointError(f"{source}: no state dict found; top-level keys are {keys}")
            obj = inner
    if not isinstance(obj, Mapping) or not _is_tensor_dict(obj):
        raise CheckpointError(f"{source}: does not hold a dict of tensors")
    out = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise CheckpointError(
                f"{source}: tensor names must be strings, found {type(key).__name__} key"
            )
        out[key[len("module.") :] if key.startswith("module.") else key] = value
    return out


def _is_tensor_dict(obj: Mapping) -> bool:
    return len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def shape_of(value: torch.Tensor | Shape) -> Shape:
    """The shape of a tensor, or a shape given as a tuple/list (from a safetensors header)."""
    if isinstance(value, torch.Tensor):
        return tuple(int(d) for d in value.shape)
    return tuple(int(d) for d in value)


def detect_spec(sd: Mapping[str, torch.Tensor | Shape], source: str = "checkpoint") -> ArchSpec:
    """Detect architecture and hyperparameters from a state dict in any known layout.

    ``sd`` maps names to tensors or to shapes (a safetensors header read without its tensors).
    Each registered architecture says whether the keys are its own (``claims``) and reads its
    hyperparameters from the shapes (``detect``). Absurd shapes and hyperparameters that no
    spec allows are a :class:`CheckpointError` naming ``source``.
    """
    from facd.archs.registry import architectures, families, signature_keys

    for arch in architectures():
        if arch.claims(sd):
            return arch.detect(sd, source)
    raise CheckpointError(f"{source}: not an {families()} checkpoint (no {signature_keys()} keys)")
