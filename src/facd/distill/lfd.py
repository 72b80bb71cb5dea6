"""LFD and LSFD (Park & Kwak, arXiv 2111.10988): local feature distillation.

Only the idea is verified (abstract); the formulas are the reconstruction of METHODS.md
section 3, with every open choice an option of :class:`LFDOptions`:

    LFD:   L = sum_i mean_{b,c,p} |R_i(F_S^i) - F_T^i|
    LSFD:  L = sum_i mean_{b,c,p} M_{b,p} * |R_i(F_S^i) - F_T^i|

R_i is a *local* regressor (1x1 convs with PReLU, receptive field 1: FACD's ``DeepRegressor``),
trained with the student; F_T is detached. The LSFD attention M (B, 1, h, w), detached:

1. D = mean over channels of |T - S| (``attention: teacher_student``) or |S - GT|
   (``student_gt``), on [0, 1] images, shape (B, 1, sH, sW);
2. D brought to the LR feature size (h, w): average pooling with kernel = stride = s
   (``avgpool``, equal to area interpolation here) or bicubic;
3. M = h * w * softmax_p(D / tau) per image, so the mean weight is 1 (``softmax``), or
   D / max_p D, or D / mean_p D.

``tau`` is in [0, 1] pixel units: D of a good network is ~0.01-0.05 on average and up to ~0.2 at
edges, so the default 0.05 gives edges e^(0.2/0.05) ~ 55x the weight of flat regions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facd.distill.options import LFDOptions, LossOptions
from facd.distill.regressor import DeepRegressor
from facd.distill.terms import LossTerm, Needs, StepContext, TermEnv, register_term
from facd.errors import ConfigError

_EPS = 1e-12


def difference_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """D = mean over channels of |a - b|, detached: (B, 1, H, W)."""
    return (a.detach().float() - b.detach().float()).abs().mean(dim=1, keepdim=True)


def resize_to(d: torch.Tensor, size: tuple[int, int], method: str) -> torch.Tensor:
    """Bring D to the LR feature size (avg-pool with kernel = stride = the scale, or bicubic)."""
    if tuple(d.shape[-2:]) == tuple(size):
        return d
    if method == "avgpool":
        kh, kw = d.shape[-2] // size[0], d.shape[-1] // size[1]
        if kh * size[0] != d.shape[-2] or kw * size[1] != d.shape[-1]:
            return F.adaptive_avg_pool2d(d, size)
        return F.avg_pool2d(d, (kh, kw))
    return F.interpolate(d, size=size, mode="bicubic", align_corners=False)


def normalise_attention(d: torch.Tensor, norm: str, tau: float) -> torch.Tensor:
    """Per-image spatial weights M from D (B, 1, h, w); ``softmax`` keeps the mean weight at 1."""
    flat = d.flatten(1)
    if norm == "softmax":
        m = flat.shape[1] * torch.softmax(flat / tau, dim=1)
    elif norm == "max":
        m = flat / flat.amax(dim=1, keepdim=True).clamp_min(_EPS)
    else:
        m = flat / flat.mean(dim=1, keepdim=True).clamp_min(_EPS)
    return m.view_as(d)


class LFDTerm(LossTerm):
    def __init__(self, opts: LFDOptions, env: TermEnv) -> None:
        super().__init__()
        if not env.student_channels:
            raise ConfigError("LFD needs feature taps on the student and the teacher")
        self.opts = opts
        self.regressors = nn.ModuleList(
            DeepRegressor(cs, ct, opts.regressor_layers, opts.regressor_width)
            for cs, ct in zip(env.student_channels, env.teacher_channels, strict=True)
        )

    def attention(self, ctx: StepContext, size: tuple[int, int]) -> torch.Tensor | None:
        o = self.opts
        if o.attention == "none":
            return None
        if o.attention == "teacher_student":
            assert ctx.sr_t is not None
            d = difference_map(ctx.sr_t, ctx.sr_s)
        else:
            d = difference_map(ctx.sr_s, ctx.hr)
        return normalise_attention(resize_to(d, size, o.attention_resize), o.attention_norm, o.tau)

    def forward(self, ctx: StepContext) -> torch.Tensor:
        assert ctx.feats_s is not None and ctx.feats_t is not None
        total = ctx.sr_s.new_zeros((), dtype=torch.float32)
        cache: dict[tuple[int, int], torch.Tensor | None] = {}
        for reg, fs, ft in zip(self.regressors, ctx.feats_s, ctx.feats_t, strict=True):
            diff = reg(fs).float() - ft.detach().float()
            dist = diff.abs() if self.opts.distance == "l1" else diff.square()
            size = (int(fs.shape[-2]), int(fs.shape[-1]))
            if size not in cache:
                cache[size] = self.attention(ctx, size)
            m = cache[size]
            total = total + (dist.mean() if m is None else (m * dist).mean())
        return total

    def describe(self) -> str:
        o = self.opts
        att = "" if o.attention == "none" else f", {o.attention} {o.attention_norm} tau={o.tau:g}"
        kind = "local features with attention" if att else "local features"
        return f"lfd[{kind}, {len(self.regressors)} taps, {o.distance}{att}]"


@register_term(
    "lfd",
    needs=lambda o: Needs(
        teacher_output=o.lfd.attention == "teacher_student",
        teacher_features=True,
        student_features=True,
    ),
    summary="LFD / LSFD local feature distillation",
)
def build(opts: LossOptions, env: TermEnv) -> LossTerm:
    return LFDTerm(opts.lfd, env)
