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
channel count and so need no regressor; ``similarity: infonce`` is a softmax over the positive
and the same negatives. Its default form is the paper's "dot-product similarity" (Table 7): the
plain dot product of the anchor DR(F^_S) and the Eq. 3-normalised features, temperature 1;
``infonce_form: cosine`` with ``temperature: 0.07`` is the usual SimCLR-style alternative.
The paper's dot product sums over all C*H*W elements, so its logits grow with the patch area
(each Eq. 3-normalised position adds up to about 1); ``infonce_reduction: position_mean``
divides it by H*W, the mean over positions of the per-position dot product, so the logits stay
in about [-1, 1] at any patch size (docs/methods.md, "InfoNCE on fair terms", measures both).

Data-parallel training: the negatives come from the global batch, gathered across ranks, and a
batch sum is scaled by the world size (see :mod:`facd.distill.crossrank`), so K ranks take the
same step as one process on the same samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facd.distill import crossrank
from facd.distill.options import ContrastOptions, LossOptions
from facd.distill.regressor import DeepRegressor
from facd.distill.terms import LossTerm, Needs, StepContext, TermEnv, register_term
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


def _own_slots(n: int, m: int, offset: int, device: torch.device) -> torch.Tensor:
    """(n, m) mask, False at [i, offset + i]: local anchor i against its own global row."""
    keep = torch.ones(n, m, dtype=torch.bool, device=device)
    keep[torch.arange(n, device=device), torch.arange(offset, offset + n, device=device)] = False
    return keep


def l1_ratio(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    student_negatives: bool = True,
    detach_student_negatives: bool = False,
    eps: float = 1e-7,
    others: torch.Tensor | None = None,
    offset: int = 0,
) -> torch.Tensor:
    """Per-anchor Eq. 4 ratio, shape (n,). Rows are flattened samples.

    ``positive`` (M, D) and ``others`` (M, D, the student rows used as negatives; default
    ``anchor``) may hold a larger batch than ``anchor`` (n, D): anchor i is global row
    ``offset + i`` (see :mod:`facd.distill.crossrank`); every other row is a negative.
    """
    n, m = anchor.shape[0], positive.shape[0]
    off = _own_slots(n, m, offset, anchor.device)
    d_at = pairwise_l1(anchor, positive)
    rows = torch.arange(n, device=anchor.device)
    pos = d_at[rows, rows + offset]
    neg = (d_at * off).sum(dim=1)
    if student_negatives:
        other = anchor if others is None else others
        other = other.detach() if detach_student_negatives else other
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
    temperature: float = 1.0,
    student_negatives: bool = True,
    detach_student_negatives: bool = False,
    form: str = "dot",
    others: torch.Tensor | None = None,
    offset: int = 0,
) -> torch.Tensor:
    """Per-anchor InfoNCE over the positive and the same negatives as Eq. 4, shape (n,).

    ``form="dot"`` uses the plain dot product of the rows as given (the regressed, Eq. 3-normalised
    student feature against the Eq. 3-normalised teacher feature: the paper's "dot-product
    similarity"); ``"cosine"`` first scales every row to unit length. Logits are divided by
    ``temperature``. ``others`` and ``offset`` as in :func:`l1_ratio`.
    """
    n, m = anchor.shape[0], positive.shape[0]
    a, t = anchor.float(), positive.float()
    other = a if others is None else others.float()
    if form == "cosine":
        a, t, other = F.normalize(a, dim=1), F.normalize(t, dim=1), F.normalize(other, dim=1)
    logits = a @ t.T / temperature  # (n, M): column offset + i is anchor i's positive
    target = torch.arange(offset, offset + n, device=a.device)
    if student_negatives:
        other = other.detach() if detach_student_negatives else other
        own = ~_own_slots(n, m, offset, a.device)
        self_logits = (a @ other.T / temperature).masked_fill(own, float("-inf"))
        logits = torch.cat([logits, self_logits], dim=1)
    return F.cross_entropy(logits, target, reduction="none")


class ContrastTerm(LossTerm):
    def __init__(self, opts: ContrastOptions, env: TermEnv) -> None:
        super().__init__()
        self.opts = opts
        n_taps = len(env.student_channels)
        if opts.domain != "image" and len(opts.tap_weights) != n_taps:
            raise ConfigError(
                f"'loss.contrast.tap_weights' has {len(opts.tap_weights)} weights for {n_taps} taps"
            )
        self.regressors = nn.ModuleList()
        if opts.domain == "feature":
            self.regressors.extend(
                DeepRegressor(cs, ct, opts.regressor_layers, opts.regressor_width)
                for cs, ct in zip(env.student_channels, env.teacher_channels, strict=True)
            )

    def pairs(self, ctx: StepContext) -> list[tuple[float, torch.Tensor, torch.Tensor, int]]:
        """(tap weight, anchors, positives, H*W positions) per tap; rows are flattened samples."""
        o = self.opts
        if o.domain == "image":
            assert ctx.sr_t is not None
            sr_s, sr_t = ctx.sr_s, ctx.sr_t.detach()
            return [(1.0, sr_s.flatten(1), sr_t.flatten(1), sr_s[0, 0].numel())]
        assert ctx.feats_s is not None and ctx.feats_t is not None
        out = []
        for j, (w, fs, ft) in enumerate(zip(o.tap_weights, ctx.feats_s, ctx.feats_t, strict=True)):
            if o.domain == "affinity":
                a, t = spatial_affinity(fs), spatial_affinity(ft.detach())
            else:
                a = self.regressors[j](normalize_features(fs, o.normalize))
                t = normalize_features(ft.detach(), o.normalize)
            out.append((w, a.flatten(1), t.flatten(1), a[0, 0].numel()))
        return out

    def forward(self, ctx: StepContext) -> torch.Tensor:
        o = self.opts
        size, rank = crossrank.world()
        if ctx.sr_s.shape[0] * size < 2:
            raise ConfigError(
                "the contrastive term needs a batch of at least 2 (negatives are other samples)"
            )
        total = ctx.sr_s.new_zeros((), dtype=torch.float32)
        for w, a, t, positions in self.pairs(ctx):
            # Negatives come from the global batch when several ranks train (crossrank.py).
            others = crossrank.gather_with_grad(a) if o.student_negatives else None
            t_all = crossrank.gather_detached(t)
            offset = rank * a.shape[0]
            if o.similarity == "infonce":
                # position_mean divides the dot product by H*W: a temperature H*W times larger
                mean = o.infonce_reduction == "position_mean"
                tau = o.temperature * positions if mean else o.temperature
                per = info_nce(
                    a, t_all, tau, o.student_negatives,
                    o.detach_student_negatives, o.infonce_form, others, offset,
                )  # fmt: skip
            else:
                per = l1_ratio(
                    a, t_all, o.student_negatives, o.detach_student_negatives, o.eps,
                    others, offset,
                )  # fmt: skip
            if o.adaptive:
                assert ctx.alpha is not None
                per = per * ctx.alpha.to(per.dtype)
            # DDP averages the ranks' gradients: a batch sum is scaled by the world size so
            # that the average is the single-process sum; a mean needs nothing.
            total = total + w * (per.sum() * size if o.batch_reduction == "sum" else per.mean())
        return total

    def describe(self) -> str:
        o = self.opts
        sim: str = o.similarity
        if sim == "infonce":
            sim = f"infonce {o.infonce_form} T={o.temperature:g}"
            if o.infonce_reduction == "position_mean":
                sim += " mean over positions"
        return f"contrast[{o.domain}, {sim}, adaptive={o.adaptive}, w={o.tap_weights}]"


@register_term(
    "contrast",
    needs=lambda o: Needs(
        teacher_output=True,
        teacher_features=o.contrast.domain != "image",
        student_features=o.contrast.domain != "image",
    ),
    summary="FACD's contrastive ratio (Eq. 4, 6, 7) and its ablations",
)
def build(opts: LossOptions, env: TermEnv) -> LossTerm:
    return ContrastTerm(opts.contrast, env)
