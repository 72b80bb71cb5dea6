"""Contrastive negatives across data-parallel ranks.

A contrastive term compares each sample with every other sample of the batch. Under DDP each
rank holds only ``B/K`` samples of the global batch ``B``, so the negatives of the global batch
have to be gathered. Choices (so that K ranks reproduce one process on the same ``B`` samples):

- every rank computes the terms of its **own** anchors only, against the gathered global batch;
  the local rows sit in their own slot of the gathered tensor (rank r owns rows
  ``[r*n, (r+1)*n)``), so the positive of local anchor i is global row ``r*n + i``;
- tensors that carry gradients (the regressed student features, which are also negatives of
  the other ranks' anchors) are gathered by :func:`gather_with_grad`: its backward sums the
  gradient of every slot over the ranks and hands each rank the slot it owns. Without that
  step the gradient of another rank's anchor term with respect to this rank's samples would be
  lost and the step would differ from the single-process step;
- teacher tensors are detached and gathered by :func:`gather_detached`;
- a batch sum is multiplied by K, because DDP averages the gradients over the ranks; a batch
  mean is left as it is (every rank holds the same number of samples).

When ``torch.distributed`` is not initialised, or the group has one member, nothing is gathered.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(world size, rank) of the default process group; (1, 0) when there is none."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def gather_detached(x: torch.Tensor) -> torch.Tensor:
    """All ranks' ``x`` concatenated along dim 0 (rank order), without gradients."""
    size, _ = world()
    if size == 1:
        return x.detach()
    parts = [torch.empty_like(x) for _ in range(size)]
    dist.all_gather(parts, x.detach().contiguous())
    return torch.cat(parts)


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        size, rank = world()
        ctx.rank, ctx.n = rank, x.shape[0]
        parts = [torch.empty_like(x) for _ in range(size)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # each slot's gradient, summed over the ranks' losses
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """All ranks' ``x`` concatenated along dim 0; gradients flow back to the owning rank."""
    size, _ = world()
    if size == 1:
        return x
    return _GatherWithGrad.apply(x)
