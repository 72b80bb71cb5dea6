"""facd: knowledge distillation for single-image super-resolution.

The public Python API is ``facd.load(...)`` (an :class:`Upscaler`), the :class:`Upscaler` and
:class:`ModelDescription` classes, and :class:`UntrainedWeightsWarning` (to filter the warning
that a preset has random weights). ``dir(facd)`` lists only these; the submodules stay
importable as usual (``facd.archs``, ``facd.data``, ...).

Heavy modules are imported lazily (module ``__getattr__``) so that ``import facd`` and
``facd --help`` stay fast and do not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from facd.infer.api import ModelDescription, Upscaler
    from facd.messages import UntrainedWeightsWarning

__all__ = ["ModelDescription", "UntrainedWeightsWarning", "Upscaler", "__version__", "load"]

# public name -> module that defines it (imported on first access)
_LAZY = {
    "ModelDescription": "facd.infer.api",
    "Upscaler": "facd.infer.api",
    "UntrainedWeightsWarning": "facd.messages",
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
