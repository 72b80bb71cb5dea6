"""FAKD's spatial-affinity distillation (He et al., ICIP 2020).

For each tap i, with F of shape (B, C, h, w) and N = h * w:

    A = F^T F  with F normalised per spatial position over channels  ->  (B, N, N)
    L_FA = sum_i mean|A_S^i - A_T^i|      (mean over B * N^2, plain sum over taps)

A_T is detached. A does not depend on C, so no regressor is needed for 64 vs 256 channels.
``pool`` k > 1 is FAKD's PSA variant: max- (or avg-) pooling with kernel = stride = k first.

Choices:

- The affinities are computed in float32 with autocast off: the L1 of cosine similarities
  near 1 is too coarse in bf16/fp16, and the memory guard below assumes 4 bytes per entry.
- Memory grows as (h * w)^2. Before training starts, ``setup`` estimates the bytes of the
  affinity matrices of one step (2 per tap, student and teacher, plus two N x N gradient buffers
  in the backward pass) and raises a ``ConfigError`` above ``memory_budget_gb`` rather than
  letting the first step run out of memory.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from facd.distill.contrastive import spatial_affinity
from facd.distill.options import FAKDOptions, LossOptions
from facd.distill.terms import (
    LossTerm,
    Needs,
    SetupContext,
    StepContext,
    TermEnv,
    register_term,
)
from facd.errors import ConfigError

BYTES_PER_ENTRY = 4  # float32


def pool_features(f: torch.Tensor, k: int, kind: str = "max") -> torch.Tensor:
    """PSA pooling: kernel = stride = k (k = 1: unchanged)."""
    if k <= 1:
        return f
    return F.max_pool2d(f, k) if kind == "max" else F.avg_pool2d(f, k)


def affinity_l1(fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
    """mean|A(fs) - A(ft)| over B * N^2 in float32; the teacher side carries no gradient."""
    with torch.autocast(fs.device.type, enabled=False):
        a_s = spatial_affinity(fs.float())
        a_t = spatial_affinity(ft.detach().float())
        return (a_s - a_t).abs().mean()


def affinity_memory_bytes(batch: int, height: int, width: int, taps: int, pool: int = 1) -> int:
    """Estimated bytes of FAKD's affinity matrices in one training step (per process).

    Counts 2 matrices per tap (student and teacher, as FAKD's code keeps them) and 2 more for the
    N x N gradients of the backward pass, each B * N^2 float32 entries with N = (h/k) * (w/k).
    """
    n = (height // pool) * (width // pool)
    return BYTES_PER_ENTRY * batch * n * n * (2 * taps + 2)


def check_memory(opts: FAKDOptions, batch: int, patch: int, taps: int) -> int:
    """Raise ConfigError if the affinities of an LR patch ``patch`` x ``patch`` exceed the budget."""
    need = affinity_memory_bytes(batch, patch, patch, taps, opts.pool)
    budget = opts.memory_budget_gb * 1024**3
    if need > budget:
        side = patch // opts.pool
        raise ConfigError(
            f"FAKD: an LR patch of {patch}x{patch} (batch {batch}, {taps} taps"
            f"{f', pool {opts.pool}' if opts.pool > 1 else ''}) makes {side * side}x{side * side} "
            f"affinity matrices needing about {need / 1024**3:.1f} GB, above "
            f"loss.fakd.memory_budget_gb={opts.memory_budget_gb:g}; set loss.fakd.pool=2 "
            "(or more), lower data.patch_size or train.batch_size, or raise the budget"
        )
    return need


class FAKDTerm(LossTerm):
    def __init__(self, opts: FAKDOptions, env: TermEnv) -> None:
        super().__init__()
        self.opts = opts
        self.n_taps = len(env.student_channels)

    def setup(self, ctx: SetupContext) -> None:
        if ctx.batch_size is not None and ctx.patch_size is not None:
            check_memory(self.opts, ctx.batch_size, ctx.patch_size, self.n_taps)

    def forward(self, ctx: StepContext) -> torch.Tensor:
        assert ctx.feats_s is not None and ctx.feats_t is not None
        k, kind = self.opts.pool, self.opts.pool_type
        total = ctx.sr_s.new_zeros((), dtype=torch.float32)
        for fs, ft in zip(ctx.feats_s, ctx.feats_t, strict=True):
            total = total + affinity_l1(pool_features(fs, k, kind), pool_features(ft, k, kind))
        return total

    def describe(self) -> str:
        pool = f", {self.opts.pool_type}-pool {self.opts.pool}" if self.opts.pool > 1 else ""
        return f"fakd[{self.n_taps} taps{pool}]"


@register_term(
    "fakd",
    needs=Needs(teacher_features=True, student_features=True),
    summary="FAKD spatial-affinity L1 at every tap",
)
def build(opts: LossOptions, env: TermEnv) -> LossTerm:
    return FAKDTerm(opts.fakd, env)
