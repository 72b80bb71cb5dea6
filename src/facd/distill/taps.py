"""Capture intermediate features by dotted module path with forward hooks.

Default taps follow FAKD's code (which FACD follows for a fair comparison), three per network,
all at LR resolution:

- EDSR: the body split into thirds, e.g. after ResBlocks 5 and 10 of 16 (``body.4``, ``body.9``)
  or 10 and 21 of 32, then ``body_out``;
- RCAN: after residual groups 3 and 7 (``body.2``, ``body.6``), then ``body_out``.

``body_out`` is the body-end conv *plus* the global skip: FAKD's forward appends ``res`` and then
runs ``res += x`` in place, so its third tap is really the post-skip tensor. Our networks add the
skip out of place and pass the sum through an identity named ``body_out``, which reproduces that
tap without relying on an in-place mutation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from facd.archs.spec import ArchSpec
from facd.errors import ConfigError


def default_taps(spec: ArchSpec) -> list[str]:
    if spec.arch == "rcan":
        if spec.n_groups < 8:
            third = max(spec.n_groups // 3, 1)
            return [f"body.{third - 1}", f"body.{min(2 * third, spec.n_groups) - 1}", "body_out"]
        return ["body.2", "body.6", "body_out"]
    # FAKD splits the blocks 5/5/6 (16) and 10/11/11 (32): the remainder goes to the later thirds.
    q, r = divmod(spec.n_blocks, 3)
    sizes = [q] * (3 - r) + [q + 1] * r
    a, b = max(sizes[0], 1), max(sizes[0] + sizes[1], 1)
    return [f"body.{a - 1}", f"body.{b - 1}", "body_out"]


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

    def _hook(self, path: str):
        def fn(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
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
    """Channel count at each tap, from a dry run on a tiny input."""
    device = next(model.parameters()).device
    with FeatureTaps(model, paths) as taps, torch.no_grad():
        was_training = model.training
        model.eval()
        model(torch.zeros(1, 3, lr_size, lr_size, device=device))
        model.train(was_training)
        return [int(f.shape[1]) for f in taps.features]
