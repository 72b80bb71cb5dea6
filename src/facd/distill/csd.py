"""CSD's contrastive loss used teacher -> student (Wang et al., IJCAI 2021).

With phi_j the frozen ImageNet VGG19 activations after relu1_1 ... relu5_1 (``vgg.py``), on
[0, 255] RGB without ImageNet mean/std (as CSD's code):

    d_pos^j = mean|phi_j(S) - phi_j(T)|                   (batch-level mean, T detached)
    d_neg^j = sum_{k=1..K} mean_{b,c,h,w}|phi_j(S_b) - phi_j(N_k)|
    L_CL    = sum_j w_j * d_pos^j / (d_neg^j + 1e-7),     w = [1/32, 1/16, 1/8, 1/4, 1]

Negatives N = bicubic x s upsampling of ``lr[randperm(K)]`` (the batch's first K LR images in
random order, so K <= batch), detached. Gradients flow through VGG into the student.

Choices:

- Upsampling is torch's bicubic (``F.interpolate(mode="bicubic", align_corners=False)``, the
  same as CSD's ``nn.Upsample(mode="bicubic")``): its kernel has a = -0.75 and no antialiasing,
  unlike MATLAB's ``imresize`` (a = -0.5) that makes our LR images. Results are not clamped.
- Memory: d_neg never builds the (K, B, C, H, W) broadcast. The K negatives' features come from
  one no-grad VGG pass; the loop over k accumulates the value and sum_k sign(phi(S) - phi(N_k)),
  which is the gradient, so the extra memory is one feature-sized tensor per layer whatever K.
- The VGG is kept outside the module tree: it is frozen and ImageNet-given, so it is not written
  into every training state (~80 MB); it follows the student's device on first use.
- The random order of the negatives comes from a fresh generator per step, seeded from (seed,
  iteration, rank) by the distiller's ``StepRandom`` (stream ``"csd"``): it draws nothing from
  torch's global generator and needs no saved state, so a resumed run is bit-exact. The sum over
  k does not depend on the order in exact arithmetic; the order changes only float rounding.
  A term used outside a distiller (never set up) falls back to torch's global generator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from facd.distill.options import CSDOptions, LossOptions
from facd.distill.terms import (
    LossTerm,
    Needs,
    SetupContext,
    StepContext,
    StepRandom,
    TermEnv,
    register_term,
)
from facd.distill.vgg import VGG19Features, load_vgg19
from facd.errors import ConfigError


def bicubic_negatives(
    lr: torch.Tensor,
    k: int,
    size: tuple[int, int],
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """CSD's negatives: the first ``k`` LR images in random order, bicubic-upsampled, detached.

    ``generator`` (a CPU generator) draws the order; None uses torch's global generator.
    """
    if k > lr.shape[0]:
        raise ConfigError(
            f"loss.csd.negatives={k} but the batch has only {lr.shape[0]} images per process"
        )
    perm = torch.randperm(k, generator=generator).to(lr.device)
    with torch.no_grad():
        return F.interpolate(lr[perm].float(), size=size, mode="bicubic", align_corners=False)


def negative_distance(fs: torch.Tensor, negs: torch.Tensor) -> torch.Tensor:
    """sum_k mean|fs - negs[k]| for fs (B, ...) and detached negs (K, ...).

    Equal in value and gradient to ``sum_k (fs - negs[k:k+1]).abs().mean()``, but autograd keeps
    no per-negative tensor: the gradient sum_k sign(fs - neg_k) / fs.numel() is accumulated here.
    """
    f = fs.detach().float()
    value = f.new_zeros(())
    sign = torch.zeros_like(f)
    for k in range(negs.shape[0]):
        d = f - negs[k : k + 1].float()
        value = value + d.abs().mean()
        sign += d.sign()
    return value + ((fs.float() - f) * sign).sum() / f.numel()


def contrastive_ratio(
    feats_s: list[torch.Tensor],
    feats_t: list[torch.Tensor],
    feats_n: list[torch.Tensor],
    weights: list[float],
    eps: float = 1e-7,
) -> torch.Tensor:
    """L_CL = sum_j w_j * mean|s_j - t_j| / (sum_k mean|s_j - n_kj| + eps)."""
    total = feats_s[0].new_zeros((), dtype=torch.float32)
    for w, s, t, n in zip(weights, feats_s, feats_t, feats_n, strict=True):
        pos = (s.float() - t.detach().float()).abs().mean()
        total = total + w * pos / (negative_distance(s, n.detach()) + eps)
    return total


class CSDTerm(LossTerm):
    def __init__(self, opts: CSDOptions, vgg: VGG19Features) -> None:
        super().__init__()
        self.opts = opts
        self._vgg = [vgg]  # a list keeps it out of state_dict() and parameters()
        self._random: StepRandom | None = None  # the distiller's, set in setup

    @property
    def vgg(self) -> VGG19Features:
        return self._vgg[0]

    def setup(self, ctx: SetupContext) -> None:
        per_process = ctx.batch_size
        if per_process is not None and self.opts.negatives > per_process:
            raise ConfigError(
                f"loss.csd.negatives={self.opts.negatives} needs at least that many images per "
                f"process, but the batch has {per_process}; lower loss.csd.negatives"
            )
        self.vgg.to(ctx.device)
        self._random = ctx.step_random

    def forward(self, ctx: StepContext) -> torch.Tensor:
        assert ctx.sr_t is not None
        vgg = self.vgg
        if next(vgg.parameters()).device != ctx.sr_s.device:
            vgg.to(ctx.sr_s.device)
        size = (int(ctx.sr_s.shape[-2]), int(ctx.sr_s.shape[-1]))
        gen = self._random.generator("csd") if self._random is not None else None
        negs = bicubic_negatives(ctx.lr, self.opts.negatives, size, gen)
        with torch.no_grad():
            feats_t = vgg(ctx.sr_t.detach() * 255.0)
            feats_n = vgg(negs * 255.0)
        feats_s = vgg(ctx.sr_s * 255.0)
        return contrastive_ratio(feats_s, feats_t, feats_n, self.opts.layer_weights, self.opts.eps)

    def describe(self) -> str:
        return f"csd[VGG19 relu1_1..5_1, K={self.opts.negatives}]"


@register_term(
    "csd",
    needs=Needs(teacher_output=True, extra_network="VGG19 (ImageNet, frozen)"),
    summary="CSD's VGG19 contrastive loss, teacher -> student",
)
def build(opts: LossOptions, env: TermEnv) -> LossTerm:
    return CSDTerm(opts.csd, load_vgg19(opts.csd.vgg_weights))
