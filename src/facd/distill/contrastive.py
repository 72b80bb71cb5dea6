"""FACD's feature-domain contrastive term (Eq. 3, 4, 6, 7) and its ablations.

For each tap j and sample i, with a_ij = DR_j(F^_S,ij) and t_ij = F^_T,ij (teacher, detached):

    ratio_ij = |a_ij - t_ij|_1 / (sum_{k != i} |a_ij - t_kj|_1 + sum_{k != i} |a_ij - a_kj|_1)
    L = sum_j w_j * sum_i c_i * ratio_ij,    c_i = a_i (Eq. 6, ``adaptive``) or 1 (Eq. 7)

Choices where the paper is silent (all options in ``ContrastOptions``):

- ``|.|_1`` is the mean absolute difference over the elements of one sample's feature. The ratio
  is the same for sum or mean, since numerator and each denominator term use the same reduction.
- Student negatives are the other samples' regressed features a_kj (the same space as the anchor),
  with gradients by default (``detach_student_negatives`` stops them).
- The sum over samples follows Eq. 4 literally (``batch_reduction: sum``); ``mean`` divides by N.
- Normalisation (Eq. 3) is per spatial position over channels, like FAKD and ``F.normalize``.

The pairwise distances come from ``torch.cdist(p=1)``, which returns an N x N matrix and never
builds the N x N x D difference tensor, so the extra memory is O(N * D).

Ablations: ``domain: image`` (ICD) uses the raw output images with no regressor;
``domain: affinity`` (FCD(SA)) uses FAKD's spatial-affinity matrices, which do not depend on the
channel count and so need no regressor; ``similarity: infonce`` uses cosine similarity with a
temperature in a softmax over the positive and the same negatives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facd.distill.options import ContrastOptions, LossOptions
from facd.distill.regressor import DeepRegressor
from facd.distill.terms import LossTerm, StepContext, TermEnv, register_term
from facd.errors import ConfigError


def normalize_features(f: torch.Tensor, mode: str) -> torch.Tensor:
    """Eq. 3 on (N, C, H, W): L2 per position over C, per sample over CHW, or per channel over HW."""
    if mode == "channel":
        return F.normalize(f, p=2, dim=1, eps=1e-8)
    if mode == "sample":
        return f / f.flatten(1).norm(dim=1).clamp_min(1e-8).view(-1, 1, 1, 1)
    if mode == "spatial":
        return f / f.flatten(2).norm(dim=2).clamp_min(1e-8)[..., None, None]
    return f


def spatial_affinity(f: torch.Tensor) -> torch.Tensor:
    """FAKD's A = F^T F with F normalised per position over channels: (N, HW, HW)."""
    flat = F.normalize(f.flatten(2), p=2, dim=1, eps=1e-8)
    return flat.transpose(1, 2) @ flat


def pairwise_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """D[i, k] = mean |a_i - b_k| for a (N, D), b (M, D), without an N x M x D tensor."""
    dist = torch.cdist(a.float().unsqueeze(0), b.float().unsqueeze(0), p=1).squeeze(0)
    return dist / a.shape[1]


def l1_ratio(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    student_negatives: bool = True,
    detach_student_negatives: bool = False,
    eps: float = 1e-7,
) -> torch.Tensor:
    """Per-sample Eq. 4 ratio, shape (N,). Rows of ``anchor``/``positive`` are flattened samples."""
    n = anchor.shape[0]
    off = ~torch.eye(n, dtype=torch.bool, device=anchor.device)
    d_at = pairwise_l1(anchor, positive)
    pos = d_at.diagonal()
    neg = (d_at * off).sum(dim=1)
    if student_negatives:
        other = anchor.detach() if detach_student_negatives else anchor
        neg = neg + (pairwise_l1(anchor, other) * off).sum(dim=1)
    return pos / (neg + eps)


def l1_ratio_naive(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    student_negatives: bool = True,
    detach_student_negatives: bool = False,
    eps: float = 1e-7,
) -> torch.Tensor:
    """Reference: builds the full N x N x D difference tensors (for tests and benchmarks)."""
    n = anchor.shape[0]
    off = ~torch.eye(n, dtype=torch.bool, device=anchor.device)
    d_at = (anchor[:, None] - positive[None]).abs().mean(-1)
    neg = (d_at * off).sum(1)
    if student_negatives:
        other = anchor.detach() if detach_student_negatives else anchor
        neg = neg + ((anchor[:, None] - other[None]).abs().mean(-1) * off).sum(1)
    return d_at.diagonal() / (neg + eps)


def info_nce(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    temperature: float,
    student_negatives: bool = True,
    detach_student_negatives: bool = False,
) -> torch.Tensor:
    """Per-sample InfoNCE with cosine similarity, the same positives and negatives as Eq. 4."""
    a = F.normalize(anchor.float(), dim=1)
    t = F.normalize(positive.float(), dim=1)
    logits = a @ t.T / temperature  # (N, N): diagonal = positives
    if student_negatives:
        other = a.detach() if detach_student_negatives else a
        self_logits = a @ other.T / temperature
        self_logits = self_logits.masked_fill(
            torch.eye(len(a), dtype=torch.bool, device=a.device), float("-inf")
        )
        logits = torch.cat([logits, self_logits], dim=1)
    target = torch.arange(len(a), device=a.device)
    return F.cross_entropy(logits, target, reduction="none")


class ContrastTerm(LossTerm):
    needs_features = True

    def __init__(self, opts: ContrastOptions, env: TermEnv) -> None:
        super().__init__()
        self.opts = opts
        self.needs_features = opts.domain != "image"
        n_taps = len(env.student_channels)
        if self.needs_features and len(opts.tap_weights) != n_taps:
            raise ConfigError(
                f"'loss.contrast.tap_weights' has {len(opts.tap_weights)} weights for {n_taps} taps"
            )
        self.regressors = nn.ModuleList()
        if opts.domain == "feature":
            self.regressors.extend(
                DeepRegressor(cs, ct, opts.regressor_layers, opts.regressor_width)
                for cs, ct in zip(env.student_channels, env.teacher_channels, strict=True)
            )

    def pairs(self, ctx: StepContext) -> list[tuple[float, torch.Tensor, torch.Tensor]]:
        o = self.opts
        if o.domain == "image":
            assert ctx.sr_t is not None
            return [(1.0, ctx.sr_s.flatten(1), ctx.sr_t.detach().flatten(1))]
        assert ctx.feats_s is not None and ctx.feats_t is not None
        out = []
        for j, (w, fs, ft) in enumerate(zip(o.tap_weights, ctx.feats_s, ctx.feats_t, strict=True)):
            if o.domain == "affinity":
                a, t = spatial_affinity(fs), spatial_affinity(ft.detach())
            else:
                a = self.regressors[j](normalize_features(fs, o.normalize))
                t = normalize_features(ft.detach(), o.normalize)
            out.append((w, a.flatten(1), t.flatten(1)))
        return out

    def forward(self, ctx: StepContext) -> torch.Tensor:
        o = self.opts
        if ctx.sr_s.shape[0] < 2:
            raise ConfigError(
                "the contrastive term needs a batch of at least 2 (negatives are other samples)"
            )
        total = ctx.sr_s.new_zeros((), dtype=torch.float32)
        for w, a, t in self.pairs(ctx):
            if o.similarity == "infonce":
                per = info_nce(a, t, o.temperature, o.student_negatives, o.detach_student_negatives)
            else:
                per = l1_ratio(a, t, o.student_negatives, o.detach_student_negatives, o.eps)
            if o.adaptive:
                assert ctx.alpha is not None
                per = per * ctx.alpha.to(per.dtype)
            total = total + w * (per.sum() if o.batch_reduction == "sum" else per.mean())
        return total

    def describe(self) -> str:
        o = self.opts
        return f"contrast[{o.domain}, {o.similarity}, adaptive={o.adaptive}, w={o.tap_weights}]"


@register_term("contrast")
def _build(opts: LossOptions, env: TermEnv) -> LossTerm:
    return ContrastTerm(opts.contrast, env)
