"""facd: knowledge distillation for single-image super-resolution.

Heavy modules are imported lazily so that ``import facd`` and ``facd --help`` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from facd.infer.api import Upscaler


def load(model: str, *, scale: int | None = None, device: str = "auto", **kwargs: Any) -> Upscaler:
    """Load a preset, facd checkpoint, or official/BasicSR checkpoint as an :class:`Upscaler`."""
    from facd.infer.api import load as _load

    return _load(model, scale=scale, device=device, **kwargs)


__all__ = ["__version__", "load"]
