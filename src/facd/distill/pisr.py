"""PISR (Lee et al., ECCV 2020) adapted to EDSR/RCAN ("PISR*"): HR encoder teacher + VID.

Two stages, both ordinary training runs (``loss.vid.mode`` picks the stage):

1. ``method: pisr-teacher`` (``mode: teacher``). The network being trained (the config's
   *student*, e.g. ``edsr-t``) is the future teacher D. It sees E(Y), an LR-size encoding of the
   HR image, instead of the LR image, and is trained with

       L_T = mean|D(E(Y)) - Y| + 1e-4 * mean|E(Y) - x|

   (the pixel term, plus this term's value: the "imitation" loss). E is this term's module, so
   it is trained, checkpointed and resumed with the network. The swap of the network's input is
   the term's declared ``student_input`` hook; the encoder is declared as an extra output
   (``extra_outputs``), written to ``<run dir>/pisr_encoder.safetensors`` at every save, and as
   the stage's product (``stage_products``) handed to a stage-2 distiller in the same process.
2. ``method: pisr`` (``mode: distill``; the method declares ``teacher_stage``). The frozen
   teacher D sees E(Y) (``teacher_input``, E frozen, from the stage-1 distiller when one is
   given, else from ``loss.vid.teacher_encoder``, default: the file beside ``teacher.weights``);
   the student sees x and is trained with L_S = mean|S - Y| + 1e-6 * L_VID.

VID (Laplace): mu = head(F_S), b = softplus(head'(F_S)), b' = 0.1 b + 1e-8,
L_VID = mean_{b,c,h,w} [log(2 b') + |t - mu| / b'] with t the teacher feature (detached). The
code's constant C log(2 pi) / 2 has no gradient and is left out. Gaussian: s2 = 0.001 v + 1e-8,
mean[log(s2) / 2 + (t - mu)^2 / (2 s2)].

Decisions for EDSR/RCAN (METHODS.md section 5; FACD's own adaptation is not documented):

(a) E = conv5x5 (3 -> 56) + PReLU, conv5x5 stride s (56 -> 56) + PReLU, conv3x3 (56 -> 12) +
    PReLU, conv3x3 (12 -> 3), PISR's ``lcscc`` with 3 colours; on [0, 1] images, as PISR.
(b) The teacher is retrained on E(Y) (stage 1); a teacher whose facd checkpoint says it was
    trained with another method is refused.
(c) The distilled feature is tap 3 (``body_out``: the last LR feature before the upsampler).
(d) mu and b map student channels to teacher channels (EDSR 64 -> 256); the hidden width is the
    student's channel count, as PISR's ``in_channels``.
(e) The student starts from the teacher's weights only when the architectures are identical
    (and no ``student.weights`` is given): never for EDSR-16 from EDSR-32 or RCAN 10x6 from
    10x20.
(f) Our networks compute in [0, 255] like EDSR-PyTorch, so their features are 255x those of the
    equivalent [0, 1] network that PISR's weights (1e-6, b' = 0.1 b) were tuned for. VID is
    computed on the features divided by ``rgb_range``; without that the initial b' is ~1e-3 of
    |t - mu| and the loss starts near 1e8.

In stage 2 the frozen encoder is loaded from its file at set-up (and on every resume); it is
kept out of ``state_dict()`` and ``parameters()``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from facd.distill.methods import missing_stage_message
from facd.distill.options import LossOptions, VIDOptions
from facd.distill.terms import (
    LossTerm,
    Needs,
    SetupContext,
    StepContext,
    TermEnv,
    register_term,
)
from facd.errors import CheckpointError, ConfigError

ENCODER_FILE = "pisr_encoder.safetensors"  # the HR encoder E, declared with the term below
ENCODER_METADATA_KEY = "facd.pisr_encoder"


class HREncoder(nn.Sequential):
    """PISR's ``lcscc`` encoder: HR (B, 3, sH, sW) in [0, 1] -> LR-size image (B, 3, H, W)."""

    def __init__(self, scale: int, channels: int = 56, bottleneck: int = 12) -> None:
        super().__init__(
            nn.Conv2d(3, channels, 5, stride=1, padding=2),
            nn.PReLU(),
            nn.Conv2d(channels, channels, 5, stride=scale, padding=2),
            nn.PReLU(),
            nn.Conv2d(channels, bottleneck, 3, padding=1),
            nn.PReLU(),
            nn.Conv2d(bottleneck, 3, 3, padding=1),
        )
        self.scale = scale
        self.channels = channels
        self.bottleneck = bottleneck

    def describe(self) -> dict:
        return {"scale": self.scale, "channels": self.channels, "bottleneck": self.bottleneck}


def encoder_file(encoder: HREncoder) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a stage-1 encoder file."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}
    return tensors, {ENCODER_METADATA_KEY: json.dumps(encoder.describe()), "format": "facd"}


def save_encoder(path: str | Path, encoder: HREncoder) -> None:
    from safetensors.torch import save

    from facd.fileio import atomic_write_bytes

    tensors, meta = encoder_file(encoder)
    atomic_write_bytes(path, save(tensors, metadata=meta))


def load_encoder_into(encoder: HREncoder, path: str | Path) -> None:
    """Strictly load a stage-1 encoder file into ``encoder`` (scale and widths must match)."""
    from facd.archs.io import read_checkpoint

    sd, meta = read_checkpoint(path)
    if ENCODER_METADATA_KEY in meta:
        try:
            found = json.loads(meta[ENCODER_METADATA_KEY])
        except (ValueError, RecursionError):
            raise CheckpointError(
                f"{path}: metadata {ENCODER_METADATA_KEY!r} is not valid JSON; the file is "
                "damaged or was edited: train the pisr-teacher stage again"
            ) from None
        if found != encoder.describe():
            raise CheckpointError(
                f"{path}: PISR encoder is {found}, but this run expects {encoder.describe()} "
                "(check scale, loss.vid.encoder_channels and loss.vid.encoder_bottleneck)"
            )
    own = encoder.state_dict()
    if set(sd) != set(own) or any(tuple(sd[k].shape) != tuple(own[k].shape) for k in own):
        raise CheckpointError(f"{path}: not a PISR encoder of this shape ({sorted(sd)[:3]} ...)")
    encoder.load_state_dict(sd, strict=True)


def laplace_nll(mu: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """PISR's Laplace VID: mean[log(2 b') + |t - mu| / b'], b' = 0.1 b + 1e-8 (no constant)."""
    scale = 0.1 * b + 1e-8
    return (torch.log(2 * scale) + (t - mu).abs() / scale).mean()


def gaussian_nll(mu: torch.Tensor, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """PISR's Gaussian VID: mean[log(s2) / 2 + (t - mu)^2 / (2 s2)], s2 = 0.001 v + 1e-8."""
    var = 0.001 * v + 1e-8
    return (0.5 * torch.log(var) + (t - mu).square() / (2 * var)).mean()


def vid_head(c_in: int, c_out: int, width: int, positive: bool) -> nn.Sequential:
    """PISR's adaptation layer: 1x1 conv, PReLU, 1x1 conv (+ Softplus for the scale head)."""
    mods: list[nn.Module] = [nn.Conv2d(c_in, width, 1), nn.PReLU(), nn.Conv2d(width, c_out, 1)]
    if positive:
        mods.append(nn.Softplus())
    return nn.Sequential(*mods)


def _scale(env: TermEnv) -> int:
    if env.student is None:
        raise ConfigError(
            "PISR needs a student network of the architecture registry (EDSR/RCAN) to know "
            "the scale and pixel range"
        )
    return env.student.scale


class PISRTeacherStage(LossTerm):
    """Stage 1: owns E, feeds E(Y) to the trained network, returns mean|E(Y) - x|."""

    def __init__(self, opts: VIDOptions, env: TermEnv) -> None:
        super().__init__()
        self.opts = opts
        self.encoder = HREncoder(_scale(env), opts.encoder_channels, opts.encoder_bottleneck)

    def student_input(self, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """The trained network sees E(Y) instead of the LR image."""
        return self.encoder(hr)

    def extra_outputs(self, run_dir: Path) -> dict[Path, tuple[dict[str, torch.Tensor], dict]]:
        return {Path(run_dir) / ENCODER_FILE: encoder_file(self.encoder)}

    def stage_products(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder}

    def forward(self, ctx: StepContext) -> torch.Tensor:
        if ctx.data_lr is None:
            raise RuntimeError("PISR teacher stage: the step context lacks the data's LR image")
        return (ctx.lr.float() - ctx.data_lr.float()).abs().mean()

    def describe(self) -> str:
        return f"pisr-teacher[imitation mean|E(Y) - x|, E x{self.encoder.scale}]"


class VIDTerm(LossTerm):
    """Stage 2: VID heads on the student's tap feature; the teacher sees E(Y)."""

    def __init__(self, opts: VIDOptions, env: TermEnv) -> None:
        super().__init__()
        if not env.student_channels:
            raise ConfigError("VID needs feature taps on the student and the teacher")
        self.opts = opts
        n = len(env.student_channels)
        if not -n <= opts.tap < n:
            raise ConfigError(f"'loss.vid.tap' is {opts.tap}, but there are {n} taps")
        cs, ct = env.student_channels[opts.tap], env.teacher_channels[opts.tap]
        width = opts.head_width or cs
        self.mean_head = vid_head(cs, ct, width, positive=False)
        self.scale_head = vid_head(cs, ct, width, positive=True)
        scale = _scale(env)
        assert env.student is not None
        self.feature_scale = 1.0 / env.student.rgb_range
        self.teacher_feature_scale = 1.0 / (env.teacher or env.student).rgb_range
        encoder = HREncoder(scale, opts.encoder_channels, opts.encoder_bottleneck)
        self._encoder = [encoder.requires_grad_(False).eval()]  # frozen: not in state_dict()

    @property
    def encoder(self) -> HREncoder:
        return self._encoder[0]

    def encoder_path(self, teacher_weights: str | None) -> Path | None:
        if self.opts.teacher_encoder:
            return Path(self.opts.teacher_encoder)
        return Path(teacher_weights).parent / ENCODER_FILE if teacher_weights else None

    def setup(self, ctx: SetupContext) -> None:
        check_teacher_stage(ctx.teacher_weights, ctx.teacher_stage)
        given = ctx.stage_products.get("encoder")
        if given is not None:  # the stage-1 distiller of this process
            self.encoder.load_state_dict(given.state_dict())
        else:
            path = self.encoder_path(ctx.teacher_weights)
            if path is None:
                raise ConfigError(
                    "PISR needs the encoder of its teacher stage: pass teacher_stage=<the "
                    f"stage-1 distiller> or set loss.vid.teacher_encoder to a {ENCODER_FILE}"
                )
            if not path.is_file():
                raise ConfigError(missing_teacher_stage_message(path, ctx))
            load_encoder_into(self.encoder, path)
        self.encoder.to(ctx.device)
        if self.opts.init_student == "auto":
            init_from_teacher(ctx)

    def teacher_input(
        self, lr: torch.Tensor, hr: torch.Tensor, current: torch.Tensor
    ) -> torch.Tensor:
        enc = self.encoder
        if next(enc.parameters()).device != hr.device:
            enc.to(hr.device)
        return enc(hr)

    def forward(self, ctx: StepContext) -> torch.Tensor:
        assert ctx.feats_s is not None and ctx.feats_t is not None
        fs = ctx.feats_s[self.opts.tap] * self.feature_scale
        t = ctx.feats_t[self.opts.tap].detach().float() * self.teacher_feature_scale
        mu = self.mean_head(fs).float()
        b = self.scale_head(fs).float()
        nll = laplace_nll if self.opts.pdf == "laplace" else gaussian_nll
        return nll(mu, b, t)

    def describe(self) -> str:
        return f"vid[{self.opts.pdf}, tap {self.opts.tap}, teacher sees E(Y)]"


def missing_teacher_stage_message(path: Path, ctx: SetupContext) -> str:
    """One line: what is missing and the stage-1 command that makes it."""

    scale = ctx.teacher_spec.scale if ctx.teacher_spec else 4
    note = (
        f" (the {ENCODER_FILE} beside it is read), or set loss.vid.teacher_encoder to an "
        f"existing {ENCODER_FILE}"
    )
    return missing_stage_message(ctx.method, path, ctx.teacher_preset, scale, note)


def check_teacher_stage(weights: str | None, stage: str | None = None) -> None:
    """Decision (b): refuse a facd teacher checkpoint trained by a method other than ``stage``
    (the method's declared teacher stage). A damaged file is a CheckpointError either way."""
    if not weights or not str(weights).endswith(".safetensors") or not Path(weights).is_file():
        return  # official .pt teachers carry no method; the encoder file is still required
    from facd.archs.io import read_shapes  # the one metadata reader (header only)

    method = read_shapes(weights)[1].get("method")
    if stage is not None and method is not None and method != stage:
        raise ConfigError(
            f"{weights} was trained with method {method!r}; PISR's teacher must be trained on "
            f"E(Y) with method {stage} (a teacher trained on LR input cannot be used)"
        )


def init_from_teacher(ctx: SetupContext) -> bool:
    """Decision (e): copy the teacher's weights into the student if the architectures match."""
    if ctx.student_weights or ctx.teacher is None:
        return False
    if ctx.student_spec is None or ctx.student_spec != ctx.teacher_spec:
        ctx.log("pisr: student and teacher differ; student not initialised from the teacher")
        return False
    ctx.student.load_state_dict(ctx.teacher.state_dict())
    ctx.log("pisr: student initialised from the teacher's weights")
    return True


def _needs(opts: LossOptions) -> Needs:
    if opts.vid.mode == "teacher":
        return Needs(extra_network="HR encoder (trained)")
    return Needs(
        teacher_features=True,
        student_features=True,
        teacher_stage=True,
        extra_network="HR encoder (frozen, from the teacher stage)",
    )


@register_term(
    "vid",
    needs=_needs,
    summary="PISR: the teacher stage (mode teacher) or VID distillation (mode distill)",
    outputs=(ENCODER_FILE,),  # the HR encoder E, for the distillation stage
)
def build(opts: LossOptions, env: TermEnv) -> LossTerm:
    if opts.vid.mode == "teacher":
        return PISRTeacherStage(opts.vid, env)
    return VIDTerm(opts.vid, env)
