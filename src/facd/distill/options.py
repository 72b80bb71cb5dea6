"""Typed options of every loss term. A method (see :mod:`facd.distill.methods`) is a preset of
these; a config's ``loss:`` section overrides individual fields.

A term is active when its weight is non-zero. Weights are for images in [0, 1]; where a method's
paper tuned a weight on [0, 255] images, its preset converts it explicitly (see ``methods.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

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
        "l1_ratio: |a - pos| / sum_k |a - neg_k| (Eq. 4); infonce: dot product + temperature",
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
    temperature: float = field(0.07, "InfoNCE temperature")
    eps: float = field(1e-7, "added to the denominator")

    def validate(self, where: str) -> None:
        _check(self.weight >= 0, f"{where}.weight", "must be >= 0")
        _check(len(self.tap_weights) >= 1, f"{where}.tap_weights", "must not be empty")
        _check(self.regressor_layers >= 1, f"{where}.regressor_layers", "must be >= 1")
        _check(self.temperature > 0, f"{where}.temperature", "must be > 0")


@dataclass
class FAKDOptions:
    """FAKD spatial-affinity distillation (He et al., ICIP 2020)."""

    weight: float = field(
        0.0, "beta; FAKD's scripts use 10 with [0,255] pixel losses, i.e. 10/255 here"
    )
    pool: int = field(1, "max-pool kernel before the affinity (FAKD's PSA variant); 1 = none")
    memory_budget_gb: float = field(
        8.0, "refuse to start when the affinity matrices would exceed this"
    )

    def validate(self, where: str) -> None:
        _check(self.weight >= 0, f"{where}.weight", "must be >= 0")
        _check(self.pool >= 1, f"{where}.pool", "must be >= 1")


@dataclass
class LFDOptions:
    """LFD / LSFD (Park & Kwak): local 1x1 regressors, optionally with difference attention."""

    weight: float = field(0.0, "lambda_FD")
    regressor_layers: int = field(5, "1x1 convs in the local regressor")
    attention: Literal["none", "teacher_student", "student_gt"] = field(
        "none", "LSFD soft attention source: |T - S| (default reconstruction) or |S - GT|"
    )
    attention_norm: Literal["softmax", "max", "mean"] = field("softmax", "spatial normalisation")
    tau: float = field(1.0, "softmax temperature of the attention")
    distance: Literal["l1", "l2"] = field("l1", "feature distance")

    def validate(self, where: str) -> None:
        _check(self.weight >= 0, f"{where}.weight", "must be >= 0")
        _check(self.tau > 0, f"{where}.tau", "must be > 0")


@dataclass
class CSDOptions:
    """CSD's VGG19 contrastive loss, teacher -> student (Wang et al., IJCAI 2021)."""

    weight: float = field(0.0, "lambda (README: 200)")
    vgg_weights: str | None = field(None, "path to torchvision's ImageNet vgg19-*.pth; required")
    negatives: int = field(10, "K bicubic negatives from the batch")
    layer_weights: list[float] = field([1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0], "relu1_1..relu5_1")

    def validate(self, where: str) -> None:
        _check(self.weight >= 0, f"{where}.weight", "must be >= 0")
        _check(self.negatives >= 1, f"{where}.negatives", "must be >= 1")


@dataclass
class VIDOptions:
    """PISR's variational information distillation on the last LR feature."""

    weight: float = field(0.0, "weight of the VID loss (PISR: 1e-6)")
    pdf: Literal["laplace", "gaussian"] = field("laplace", "")
    teacher_encoder: str | None = field(None, "weights of the PISR teacher's HR encoder")

    def validate(self, where: str) -> None:
        _check(self.weight >= 0, f"{where}.weight", "must be >= 0")


@dataclass
class LossOptions:
    """All loss sections; weights are in units of [0, 1] images."""

    pixel: PixelOptions = dataclasses.field(default_factory=PixelOptions)
    contrast: ContrastOptions = dataclasses.field(default_factory=ContrastOptions)
    fakd: FAKDOptions = dataclasses.field(default_factory=FAKDOptions)
    lfd: LFDOptions = dataclasses.field(default_factory=LFDOptions)
    csd: CSDOptions = dataclasses.field(default_factory=CSDOptions)
    vid: VIDOptions = dataclasses.field(default_factory=VIDOptions)
