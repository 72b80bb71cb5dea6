"""The x8 geometric self-ensemble, one definition for ``facd eval`` and ``facd upscale``.

The model runs on the 8 dihedral transforms of the input (flips of W and H, then a transpose),
each output is mapped back, and the outputs are averaged, unclamped (as in EDSR-PyTorch). The
transforms are taken in the order ``k = 0..7`` (bit 0: flip W, bit 1: flip H, bit 2:
transpose) and summed in that order, so two callers get the same floats. Each transformed input
is run on its own: the memory of a single forward pass.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

__all__ = ["dihedral", "forward_x8", "undo_dihedral"]


def dihedral(x: Tensor, k: int) -> Tensor:
    """The k-th of the 8 dihedral transforms of the last two dimensions."""
    if k & 1:
        x = x.flip(-1)
    if k & 2:
        x = x.flip(-2)
    if k & 4:
        x = x.transpose(-1, -2)
    return x


def undo_dihedral(y: Tensor, k: int) -> Tensor:
    """The inverse of :func:`dihedral` (an output mapped back to the input's orientation)."""
    if k & 4:
        y = y.transpose(-1, -2)
    if k & 2:
        y = y.flip(-2)
    if k & 1:
        y = y.flip(-1)
    return y


def forward_x8(model: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """The mean of ``model`` over the 8 transforms of ``x``, each output mapped back.

    ``model`` receives each transformed input as it is (a view; make it contiguous inside
    ``model`` if the network needs a memory format).
    """
    total = model(x)
    for k in range(1, 8):
        total = total + undo_dihedral(model(dihedral(x, k)), k)
    return total / 8.0
