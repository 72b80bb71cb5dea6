"""Capture intermediate features by dotted module path with forward hooks.

The default taps come from each architecture's declaration (:mod:`facd.archs.registry`), with
their channel counts, three per network:

- EDSR: the body split into thirds, e.g. after ResBlocks 5 and 10 of 16 (``body.4``, ``body.9``)
  or 10 and 21 of 32, then ``body_out`` (FAKD's taps, which FACD follows for a fair comparison);
- RCAN: after residual groups 3 and 7 (``body.2``, ``body.6``), then ``body_out``;
- SwinIR: the outputs of three RSTBs (``taps.1``, ``taps.3``, ``taps.5`` of 6), as (N, C, H, W)
  maps with the window padding cropped away.

``body_out`` is the body-end conv *plus* the global skip: FAKD's forward appends ``res`` and then
runs ``res += x`` in place, so its third tap is really the post-skip tensor. Our networks add the
skip out of place and pass the sum through an identity named ``body_out``, which reproduces that
tap without relying on an in-place mutation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from facd.archs.registry import TapPoint
from facd.archs.spec import ArchSpec
from facd.errors import ConfigError


def default_tap_points(spec: ArchSpec) -> list[TapPoint]:
    """The architecture's default taps with their channel counts."""
    return spec.declaration.taps(spec)


def default_taps(spec: ArchSpec) -> list[str]:
    """The module paths of the architecture's default taps."""
    return [t.path for t in default_tap_points(spec)]


class FeatureTaps:
    """Registers forward hooks on named submodules and keeps their outputs of the last forward.

    Use as a context manager or call :meth:`remove`. ``features`` is in the order of ``paths``.
    Captured tensors are the module outputs themselves (gradients flow); set ``clone=True`` to
    guard against a later in-place op modifying a captured tensor.
    """

    def __init__(self, model: nn.Module, paths: Sequence[str], clone: bool = False) -> None:
        modules = dict(model.named_modules())
        missing = [p for p in paths if p not in modules]
        if missing:
            sample = [n for n in modules if n.count(".") <= 1 and n][:12]
            raise ConfigError(
                f"tap path(s) {missing} not found in the network; examples of valid paths: {sample}"
            )
        self.paths = list(paths)
        self.clone = clone
        self._store: dict[str, torch.Tensor] = {}
        self._handles = [modules[p].register_forward_hook(self._hook(p)) for p in self.paths]

    def _hook(self, path: str) -> Callable[[nn.Module, Any, torch.Tensor], None]:
        def fn(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            self._store[path] = output.clone() if self.clone else output

        return fn

    @property
    def features(self) -> list[torch.Tensor]:
        try:
            return [self._store[p] for p in self.paths]
        except KeyError as err:
            raise RuntimeError(f"tap {err} was not reached in the last forward pass") from None

    def clear(self) -> None:
        self._store.clear()

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._store.clear()

    def __enter__(self) -> FeatureTaps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def tap_channels(model: nn.Module, paths: Sequence[str], lr_size: int = 8) -> list[int]:
    """Channel count at each tap: declared by the architecture for its default taps (no dry
    run); other paths, or a network facd did not build, by a dry run on a tiny input."""
    from facd.archs import spec_of_module

    spec = spec_of_module(model)
    declared = {t.path: t.channels for t in default_tap_points(spec)} if spec else {}
    if all(p in declared for p in paths):
        return [declared[p] for p in paths]
    device = next(model.parameters()).device
    with FeatureTaps(model, paths) as taps, torch.no_grad():
        was_training = model.training
        model.eval()
        model(torch.zeros(1, 3, lr_size, lr_size, device=device))
        model.train(was_training)
        return [int(f.shape[1]) for f in taps.features]
