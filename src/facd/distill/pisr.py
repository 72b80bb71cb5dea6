"""PISR (Lee et al., ECCV 2020) adapted to EDSR/RCAN ("PISR*"): HR encoder teacher + VID.

Two stages, both ordinary training runs (``loss.vid.mode`` picks the stage):

1. ``method: pisr-teacher`` (``mode: teacher``). The network being trained (the config's
   *student*, e.g. ``edsr-t``) is the future teacher D. It sees E(Y), an LR-size encoding of the
   HR image, instead of the LR image, and is trained with

       L_T = mean|D(E(Y)) - Y| + 1e-4 * mean|E(Y) - x|

   (the pixel term, plus this term's value: the "imitation" loss). E is this term's module, so
   it is trained, checkpointed and resumed with the network. The swap of the network's input is
   a forward pre-hook on the trainer's ``DistillModel`` installed in ``on_setup``; the encoder
   weights are written to ``<run dir>/pisr_encoder.safetensors`` at every save.
2. ``method: pisr`` (``mode: distill``). The frozen teacher D sees E(Y) (``teacher_input``, E
   frozen, from ``loss.vid.teacher_encoder``, default: the file beside ``teacher.weights``); the
   student sees x and is trained with L_S = mean|S - Y| + 1e-6 * L_VID.

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

from facd.distill.options import LossOptions, VIDOptions
from facd.distill.terms import LossTerm, StepContext, TermEnv, register_term
from facd.errors import CheckpointError, ConfigError

ENCODER_FILE = "pisr_encoder.safetensors"
ENCODER_METADATA_KEY = "facd.pisr_encoder"
TEACHER_METHOD = "pisr-teacher"


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


def save_encoder(path: str | Path, encoder: HREncoder) -> None:
    from safetensors.torch import save

    from facd.fileio import atomic_write_bytes

    tensors = {k: v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}
    meta = {ENCODER_METADATA_KEY: json.dumps(encoder.describe()), "format": "facd"}
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


class PISRTeacherStage(LossTerm):
    """Stage 1: owns E, feeds E(Y) to the trained network, returns mean|E(Y) - x|."""

    needs_teacher = False

    def __init__(self, opts: VIDOptions, env: TermEnv) -> None:
        super().__init__()
        self.opts = opts
        self.encoder = HREncoder(env.student.scale, opts.encoder_channels, opts.encoder_bottleneck)
        self._real_lr: torch.Tensor | None = None

    def swap_input(self, _module: nn.Module, args: tuple) -> tuple:
        """Forward pre-hook of ``DistillModel``: (lr, hr, ...) -> (E(hr), hr, ...)."""
        lr, hr, *rest = args
        self._real_lr = lr
        return (self.encoder(hr), hr, *rest)

    def on_setup(self, trainer: object) -> None:
        t = trainer  # the facd Trainer
        t.model.register_forward_pre_hook(self.swap_input)  # type: ignore[attr-defined]
        save_network = t.save  # type: ignore[attr-defined]
        path = Path(t.run_dir) / ENCODER_FILE  # type: ignore[attr-defined]

        def save() -> None:
            save_network()
            if t.dist.is_main:  # type: ignore[attr-defined]
                save_encoder(path, self.encoder)

        t.save = save  # type: ignore[attr-defined]

    def forward(self, ctx: StepContext) -> torch.Tensor:
        if self._real_lr is None:
            raise RuntimeError("PISR teacher stage: the input swap hook did not run")
        real, self._real_lr = self._real_lr, None
        return (ctx.lr.float() - real.float()).abs().mean()

    def describe(self) -> str:
        return f"pisr-teacher[imitation mean|E(Y) - x|, E x{self.encoder.scale}]"


class VIDTerm(LossTerm):
    """Stage 2: VID heads on the student's tap feature; the teacher sees E(Y)."""

    needs_features = True

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
        self.feature_scale = 1.0 / env.student.rgb_range
        self.teacher_feature_scale = 1.0 / (env.teacher or env.student).rgb_range
        encoder = HREncoder(env.student.scale, opts.encoder_channels, opts.encoder_bottleneck)
        self._encoder = [encoder.requires_grad_(False).eval()]  # frozen: not in state_dict()

    @property
    def encoder(self) -> HREncoder:
        return self._encoder[0]

    def encoder_path(self, trainer: object) -> Path:
        cfg = trainer.cfg  # type: ignore[attr-defined]
        if self.opts.teacher_encoder:
            return Path(self.opts.teacher_encoder)
        return Path(cfg.teacher.weights).parent / ENCODER_FILE

    def on_setup(self, trainer: object) -> None:
        t = trainer
        cfg = t.cfg  # type: ignore[attr-defined]
        check_teacher_stage(cfg.teacher.weights)
        path = self.encoder_path(t)
        if not path.is_file():
            raise ConfigError(missing_teacher_stage_message(path, cfg))
        load_encoder_into(self.encoder, path)
        self.encoder.to(t.device)  # type: ignore[attr-defined]
        if self.opts.init_student == "auto":
            init_from_teacher(t)

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


def teacher_stage_config(cfg: object) -> str:
    """The shipped config of stage 1 for this run's teacher (``configs/...``), as a hint."""
    teacher = getattr(cfg, "teacher", None)
    preset = str(getattr(teacher, "preset", "") or "")
    if "tiny" in preset:
        return f"configs/tiny/{TEACHER_METHOD}.yaml"
    arch = "rcan" if preset.startswith("rcan") else "edsr"
    return f"configs/paper/{arch}-x{getattr(cfg, 'scale', 4)}-{TEACHER_METHOD}.yaml"


def missing_teacher_stage_message(path: Path, cfg: object) -> str:
    """One line: what is missing and the stage-1 command that makes it."""
    return (
        f"PISR needs its teacher stage: {path} not found; run the {TEACHER_METHOD} config "
        f"first (facd train {teacher_stage_config(cfg)} --out {path.parent}) and set "
        f"teacher.weights to its last.safetensors (the {ENCODER_FILE} beside it is read), or "
        f"set loss.vid.teacher_encoder to an existing {ENCODER_FILE}"
    )


def check_teacher_stage(weights: str | None) -> None:
    """Decision (b): refuse a facd teacher checkpoint trained by a method other than stage 1."""
    if not weights or not str(weights).endswith(".safetensors") or not Path(weights).is_file():
        return  # official .pt teachers carry no method; the encoder file is still required
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt") as f:
            method = (f.metadata() or {}).get("method")
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
        first = " ".join(str(err).split())[:160] or type(err).__name__
        raise CheckpointError(f"{weights}: not a valid safetensors file ({first})") from None
    if method is not None and method != TEACHER_METHOD:
        raise ConfigError(
            f"{weights} was trained with method {method!r}; PISR's teacher must be trained on "
            f"E(Y) with method {TEACHER_METHOD} (a teacher trained on LR input cannot be used)"
        )


def init_from_teacher(trainer: object) -> bool:
    """Decision (e): copy the teacher's weights into the student if the architectures match."""
    t = trainer
    if t.cfg.student.weights:  # type: ignore[attr-defined]
        return False
    if t.student_spec != t.teacher_spec:  # type: ignore[attr-defined]
        t.log("pisr: student and teacher differ; student not initialised from the teacher")  # type: ignore[attr-defined]
        return False
    t.model.student.load_state_dict(t.teacher.state_dict())  # type: ignore[attr-defined]
    t.log("pisr: student initialised from the teacher's weights")  # type: ignore[attr-defined]
    return True


@register_term("vid")
def _build(opts: LossOptions, env: TermEnv) -> LossTerm:
    if opts.vid.mode == "teacher":
        return PISRTeacherStage(opts.vid, env)
    return VIDTerm(opts.vid, env)
