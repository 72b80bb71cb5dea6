"""Typed options of every loss term. A method (see :mod:`facd.distill.methods`) is a preset of
these; a config's ``loss:`` section overrides individual fields.

A term is active when its weight is non-zero. Weights are for images in [0, 1]; where a method's
paper tuned a weight on [0, 255] images, its preset converts it explicitly (see ``methods.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from facd.errors import ConfigError
from facd.typedconfig import field


def _check(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"'{where}' {msg}")


@dataclass
class PixelOptions:
    """L1 image losses, Eq. 2 of FACD when ``adaptive`` (weights 0.5/0.5 reproduce its 1/(2N))."""

    gt_weight: float = field(1.0, "weight of mean|S - GT| (L1_GT)")
    teacher_weight: float = field(0.0, "weight of mean|S - T| (L1_T, teacher supervision)")
    adaptive: bool = field(
        False,
        "per-sample indicator (Eq. 1): GT gets (2 - a_i), teacher a_i, a_i = 0 where the student beats the teacher",
    )

    def validate(self, where: str) -> None:
        _check(self.gt_weight >= 0 and self.teacher_weight >= 0, where, "weights must be >= 0")


@dataclass
class ContrastOptions:
    """FACD's contrastive term (Eq. 4) and its ablations FCD, ICD, FCD(SA), FCD(InfoNCE)."""

    weight: float = field(0.0, "lambda of Eq. 5 (the paper uses 4)")
    domain: Literal["feature", "image", "affinity"] = field(
        "feature", "feature: FACD/FCD; image: ICD on the outputs; affinity: FCD(SA) on F^T F"
    )
    similarity: Literal["l1_ratio", "infonce"] = field(
        "l1_ratio",
        "l1_ratio: |a - pos| / sum_k |a - neg_k| (Eq. 4); infonce: softmax over similarities",
    )
    adaptive: bool = field(True, "keep a_i in the numerator (Eq. 6); false drops it (Eq. 7)")
    tap_weights: list[float] = field([0.5, 0.3, 0.2], "w_j per tap, shallowest first (FAT)")
    normalize: Literal["channel", "sample", "spatial", "none"] = field(
        "channel",
        "L2 normalisation of Eq. 3: per position over C (default), per sample over CHW, per channel over HW",
    )
    regressor_layers: int = field(5, "1x1 convs in the deep regressor (PReLU between)")
    regressor_width: int = field(0, "hidden width of the regressor; 0 = teacher channels")
    student_negatives: bool = field(
        True, "also use the other samples' student features as negatives"
    )
    detach_student_negatives: bool = field(False, "stop gradients through student negatives")
    batch_reduction: Literal["sum", "mean"] = field(
        "sum", "sum over samples i as Eq. 4 writes, or mean"
    )
    infonce_form: Literal["dot", "cosine"] = field(
        "dot",
        "InfoNCE similarity: dot: a . t of the Eq. 3-normalised features, as the paper writes "
        "(Table 7); cosine: both sides re-normalised to unit length over the whole sample",
    )
    temperature: float = field(
        1.0, "InfoNCE logits are divided by it (1: the plain dot product; cosine runs used 0.07)"
    )
    infonce_reduction: Literal["sum", "position_mean"] | None = field(
        None,
        "InfoNCE dot product of two (C, H, W) features: sum over all elements (unset or sum: "
        "the paper's plain dot product, which grows with the patch area) or position_mean "
        "(divided by H*W: the mean over positions of the per-position dot product)",
    )
    eps: float = field(1e-7, "added to the denominator")

    @staticmethod
    def inert_keys(values: Mapping[str, Any]) -> tuple[str, ...]:
        """Options without effect given the others (plain data): InfoNCE's under the L1 ratio."""
        return ("infonce_form", "temperature") if values.get("similarity") != "infonce" else ()

    def validate(self, where: str) -> None:
        _check(self.weight >= 0, f"{where}.weight", "must be >= 0")
        _check(len(self.tap_weights) >= 1, f"{where}.tap_weights", "must not be empty")
        _check(self.regressor_layers >= 1, f"{where}.regressor_layers", "must be >= 1")
        _check(self.temperature > 0, f"{where}.temperature", "must be > 0")
        if self.infonce_reduction == "position_mean":
            _check(
                self.similarity == "infonce" and self.infonce_form == "dot",
                f"{where}.infonce_reduction",
                "position_mean needs similarity: infonce and infonce_form: dot",
            )
            _check(
                self.domain != "affinity",
                f"{where}.infonce_reduction",
                "position_mean is defined for the feature and image domains, not affinity",
            )


@dataclass
class FAKDOptions:
    """FAKD spatial-affinity distillation (He et al., ICIP 2020); see docs/methods-baselines.md."""

    weight: float = field(
        0.0, "beta; FAKD's scripts use 10 with [0,255] pixel losses, i.e. 10/255 here"
    )
    pool: int = field(1, "pooling kernel (= stride) before the affinity (FAKD's PSA); 1 = none")
    pool_type: Literal["max", "avg"] = field("max", "pooling of the PSA variant")
    memory_budget_gb: float = field(
        8.0, "refuse to start when the affinity matrices (forward + backward) would exceed this"
    )

    def validate(self, where: str) -> None:
        _check(self.weight >= 0, f"{where}.weight", "must be >= 0")
        _check(self.pool >= 1, f"{where}.pool", "must be >= 1")
        _check(self.memory_budget_gb > 0, f"{where}.memory_budget_gb", "must be > 0")


@dataclass
class LFDOptions:
    """LFD / LSFD (Park & Kwak): local 1x1 regressors, optionally with difference attention.

    Everything but the idea is a reconstruction (METHODS.md section 3); the defaults are
    documented in docs/methods-baselines.md.
    """

    weight: float = field(0.0, "lambda_FD")
    regressor_layers: int = field(5, "1x1 convs in the local regressor (PReLU between)")
    regressor_width: int = field(0, "hidden width of the regressor; 0 = teacher channels")
    attention: Literal["none", "teacher_student", "student_gt"] = field(
        "none", "LSFD soft attention source: |T - S| (default reconstruction) or |S - GT|"
    )
    attention_resize: Literal["avgpool", "bicubic"] = field(
        "avgpool", "how the HR-size difference map is brought to the LR feature size"
    )
    attention_norm: Literal["softmax", "max", "mean"] = field(
        "softmax",
        "softmax: h*w*softmax(D/tau); max: D/max(D); mean: D/mean(D) (per image)",
    )
    tau: float = field(
        0.05, "softmax temperature, in [0,1] pixel units (x255 for a [0,255] code base)"
    )
    distance: Literal["l1", "l2"] = field("l1", "feature distance")

    def validate(self, where: str) -> None:
        _check(self.weight >= 0, f"{where}.weight", "must be >= 0")
        _check(self.regressor_layers >= 1, f"{where}.regressor_layers", "must be >= 1")
        _check(self.regressor_width >= 0, f"{where}.regressor_width", "must be >= 0")
        _check(self.tau > 0, f"{where}.tau", "must be > 0")


@dataclass
class CSDOptions:
    """CSD's VGG19 contrastive loss, teacher -> student (Wang et al., IJCAI 2021)."""

    weight: float = field(0.0, "lambda (README: 200 with [0,255] pixel losses)")
    vgg_weights: str | None = field(
        None, "path to torchvision's ImageNet vgg19-dcbb9e9d.pth; required", path=True
    )
    negatives: int = field(10, "K bicubic negatives from the batch (README: 10; needs K <= batch)")
    layer_weights: list[float] = field([1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0], "relu1_1..relu5_1")
    eps: float = field(1e-7, "added to the negative distance")

    def validate(self, where: str) -> None:
        _check(self.weight >= 0, f"{where}.weight", "must be >= 0")
        _check(self.negatives >= 1, f"{where}.negatives", "must be >= 1")
        _check(len(self.layer_weights) == 5, f"{where}.layer_weights", "needs 5 weights")


@dataclass
class VIDOptions:
    """PISR: the teacher stage (``mode: teacher``) or VID distillation (``mode: distill``).

    ``mode: teacher`` trains the HR encoder E together with the network being trained (the
    future teacher); the term's value is then the imitation loss mean|E(Y) - x|.
    ``mode: distill`` feeds E(Y) (frozen) to the frozen teacher and adds the VID loss.
    """

    weight: float = field(0.0, "weight of the VID loss (PISR: 1e-6), or of the imitation loss")
    mode: Literal["distill", "teacher"] = field(
        "distill", "distill: VID on a student; teacher: train E + the teacher network"
    )
    pdf: Literal["laplace", "gaussian"] = field("laplace", "VID's distribution (PISR: laplace)")
    tap: int = field(-1, "which feature tap is distilled (index; -1 = the last, body_out)")
    head_width: int = field(0, "hidden width of the mu / b heads; 0 = student channels")
    teacher_encoder: str | None = field(
        None,
        "stage-1 encoder file; default: pisr_encoder.safetensors beside teacher.weights",
        path=True,
    )
    init_student: Literal["auto", "off"] = field(
        "auto", "auto: copy the teacher's weights into the student when the architectures match"
    )
    encoder_channels: int = field(56, "width d of the encoder (PISR: 56)")
    encoder_bottleneck: int = field(12, "width s of the encoder's 3x3 stage (PISR: 12)")

    def validate(self, where: str) -> None:
        _check(self.weight >= 0, f"{where}.weight", "must be >= 0")
        _check(self.head_width >= 0, f"{where}.head_width", "must be >= 0")
        _check(
            self.encoder_channels >= 1 and self.encoder_bottleneck >= 1,
            f"{where}.encoder_channels",
            "and encoder_bottleneck must be >= 1",
        )


@dataclass
class LossOptions:
    """All loss sections; weights are in units of [0, 1] images."""

    pixel: PixelOptions = dataclasses.field(default_factory=PixelOptions)
    contrast: ContrastOptions = dataclasses.field(default_factory=ContrastOptions)
    fakd: FAKDOptions = dataclasses.field(default_factory=FAKDOptions)
    lfd: LFDOptions = dataclasses.field(default_factory=LFDOptions)
    csd: CSDOptions = dataclasses.field(default_factory=CSDOptions)
    vid: VIDOptions = dataclasses.field(default_factory=VIDOptions)
