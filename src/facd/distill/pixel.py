"""Image-domain L1 terms and FACD's adaptive indicator (Eq. 1 and Eq. 2).

Eq. 2: L_SR = 1/(2N) sum_i [(2 - a_i) |S_i - GT_i|_1 + a_i |S_i - T_i|_1], with |.|_1 the mean
absolute error of sample i. It is the sum of the two terms below with weights 0.5 / 0.5 and
``adaptive=True``; with ``adaptive=False`` they are the plain L1_GT and L1_T of the ablations.
"""

from __future__ import annotations

import torch

from facd.distill.options import LossOptions
from facd.distill.terms import LossTerm, Needs, StepContext, TermEnv, register_term


@torch.no_grad()
def adaptive_indicator(sr_s: torch.Tensor, sr_t: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Eq. 1: a_i = 0 where mean|S_i - GT_i| < mean|T_i - GT_i| (student already better), else 1."""
    err_s = per_sample_l1(sr_s.detach().float(), hr.float())
    err_t = per_sample_l1(sr_t.detach().float(), hr.float())
    return (err_s >= err_t).to(sr_s.dtype if sr_s.is_floating_point() else torch.float32)


def per_sample_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().flatten(1).mean(dim=1)


class L1ToGT(LossTerm):
    def __init__(self, adaptive: bool) -> None:
        super().__init__()
        self.adaptive = adaptive

    def forward(self, ctx: StepContext) -> torch.Tensor:
        err = per_sample_l1(ctx.sr_s, ctx.hr)
        if self.adaptive:
            assert ctx.alpha is not None
            err = (2.0 - ctx.alpha) * err
        return err.mean()


class L1ToTeacher(LossTerm):
    def __init__(self, adaptive: bool) -> None:
        super().__init__()
        self.adaptive = adaptive

    def forward(self, ctx: StepContext) -> torch.Tensor:
        assert ctx.sr_t is not None
        err = per_sample_l1(ctx.sr_s, ctx.sr_t)
        if self.adaptive:
            assert ctx.alpha is not None
            err = ctx.alpha * err
        return err.mean()


@register_term(
    "l1_gt",
    section="pixel",
    needs=lambda o: Needs(teacher_output=o.pixel.adaptive),  # Eq. 2 weighs it by the indicator
    weight_key="gt_weight",
    summary="mean|S - GT| (Eq. 2 with the indicator when pixel.adaptive)",
)
def build_gt(opts: LossOptions, env: TermEnv) -> LossTerm:
    return L1ToGT(opts.pixel.adaptive)


@register_term(
    "l1_t",
    section="pixel",
    needs=Needs(teacher_output=True),
    weight_key="teacher_weight",
    summary="mean|S - T|, teacher supervision",
)
def build_t(opts: LossOptions, env: TermEnv) -> LossTerm:
    return L1ToTeacher(opts.pixel.adaptive)
