"""facd: knowledge distillation for single-image super-resolution.

The public Python API:

- inference: ``facd.load(...)`` (an :class:`Upscaler`), the :class:`Upscaler` and
  :class:`ModelDescription` classes, and :class:`UntrainedWeightsWarning` (to filter the warning
  that a preset has random weights);
- distillation in any training loop (docs/api.md): :class:`Distiller` (its result:
  :class:`DistillOutput`) and :class:`TrainPatches` (facd's training batches);
- new methods and loss terms (docs/extending.md): :func:`register_method` with
  :class:`MethodDef`, :func:`register_term` with :class:`LossTerm`, :class:`StepContext`,
  :class:`TermEnv`, :class:`SetupContext` and :class:`Needs`.

``dir(facd)`` lists only these; the submodules stay importable as usual (``facd.archs``,
``facd.data``, ...).

Heavy modules are imported lazily (module ``__getattr__``) so that ``import facd`` and
``facd --help`` stay fast and do not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from facd.data.patches import TrainPatches
    from facd.distill.methods import MethodDef, register_method
    from facd.distill.terms import (
        LossTerm,
        Needs,
        SetupContext,
        StepContext,
        TermEnv,
        register_term,
    )
    from facd.distiller import Distiller, DistillOutput
    from facd.infer.api import ModelDescription, Upscaler
    from facd.messages import UntrainedWeightsWarning

__all__ = [
    "DistillOutput",
    "Distiller",
    "LossTerm",
    "MethodDef",
    "ModelDescription",
    "Needs",
    "SetupContext",
    "StepContext",
    "TermEnv",
    "TrainPatches",
    "UntrainedWeightsWarning",
    "Upscaler",
    "__version__",
    "load",
    "register_method",
    "register_term",
]

# public name -> module that defines it (imported on first access)
_LAZY = {
    "ModelDescription": "facd.infer.api",
    "Upscaler": "facd.infer.api",
    "UntrainedWeightsWarning": "facd.messages",
    "Distiller": "facd.distiller",
    "DistillOutput": "facd.distiller",
    "TrainPatches": "facd.data.patches",
    "MethodDef": "facd.distill.methods",
    "register_method": "facd.distill.methods",
    "LossTerm": "facd.distill.terms",
    "Needs": "facd.distill.terms",
    "SetupContext": "facd.distill.terms",
    "StepContext": "facd.distill.terms",
    "TermEnv": "facd.distill.terms",
    "register_term": "facd.distill.terms",
}


def load(model: str, *, scale: int | None = None, device: str = "auto", **kwargs: Any) -> Upscaler:
    """Load a preset, facd checkpoint, or official/BasicSR checkpoint as an :class:`Upscaler`.

    See :func:`facd.infer.api.load`; a preset (random weights) warns with
    :class:`UntrainedWeightsWarning`.
    """
    from facd.infer.api import load as _load

    return _load(model, scale=scale, device=device, **kwargs)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'facd' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
