"""Loss terms: small modules, each one named, weighted piece of the total loss.

A term is declared once, by a :class:`TermSpec`: its name, the options section that holds its
weight, what it needs (:class:`Needs`: the teacher's output or features, the student's
features, an extra network, a teacher stage) as a function of the options, and its builder.
The needs are readable before anything is built, so whoever runs the terms (the
:class:`facd.Distiller`) decides from them whether to run a teacher and where to tap features.

Every term, built-in or a plugin's, is declared with :func:`register_term` on its builder, in
the module that defines it. :data:`TERMS` lists the built-in modules by name and imports them on
first use; their order is the order in which term values are summed.

A method (``facd.distill.methods``) switches terms on by giving them a non-zero weight. The
distiller runs the teacher and the student once per step, fills a :class:`StepContext`, and sums
``weight * term(ctx)`` over the active terms. Terms with parameters (regressors, VID heads) are
trained with the student.

Terms never see the trainer. Once built they get a :class:`SetupContext` (networks, specs, tap
channels, seed, rank and world size, a :class:`StepRandom`, the run folder and the few config
values they check), and they talk back through declared hooks only: ``student_input`` (what the
student sees), ``teacher_input`` (what the teacher sees), ``extra_outputs`` (files written beside
each checkpoint) and ``stage_products`` (what a teacher stage hands to the method that follows).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from facd.archs.spec import ArchSpec
from facd.registry import Registry

if TYPE_CHECKING:
    from facd.distill.options import LossOptions


@dataclass
class StepContext:
    """What a term may read. Teacher tensors are detached (computed under ``no_grad``).

    ``lr`` is what the student saw; ``data_lr`` the batch's LR image as given (different only
    when a term's ``student_input`` replaced it, as PISR's teacher stage does).
    """

    lr: torch.Tensor
    hr: torch.Tensor
    sr_s: torch.Tensor
    sr_t: torch.Tensor | None = None
    feats_s: list[torch.Tensor] | None = None
    feats_t: list[torch.Tensor] | None = None
    alpha: torch.Tensor | None = None  # (N,) float, Eq. 1 indicator
    data_lr: torch.Tensor | None = None


@dataclass(frozen=True)
class TermEnv:
    """Static facts a term needs at construction. A spec is None for a network that the
    architecture registry does not know (a user's own module)."""

    student: ArchSpec | None
    teacher: ArchSpec | None
    student_channels: list[int]
    teacher_channels: list[int]


def derive_seed(*keys: int | str) -> int:
    """A 64-bit seed from non-negative integers and names, stable across runs and platforms."""
    entropy = [k % 2**64 if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])


@dataclass
class StepRandom:
    """Per-step random generators derived from (seed, iteration, rank, stream), not saved.

    ``iteration`` is the number of completed steps; the distiller advances it after every
    training forward, and the trainer sets it before every step.
    """

    seed: int
    rank: int = 0
    iteration: int = 0

    def generator(self, stream: str, iteration: int | None = None) -> torch.Generator:
        """A fresh CPU generator for ``stream`` at ``iteration`` (default: the current step)."""
        it = self.iteration if iteration is None else iteration
        return torch.Generator().manual_seed(derive_seed(self.seed, it, self.rank, stream))


@dataclass(frozen=True)
class Needs:
    """What a term needs, known from its options before it is built."""

    teacher_output: bool = False
    teacher_features: bool = False
    student_features: bool = False
    extra_network: str = ""  # what else it runs or trains (a VGG19, an encoder), for people
    teacher_stage: bool = False  # reads what the method's declared teacher stage produced

    @property
    def teacher(self) -> bool:
        return self.teacher_output or self.teacher_features

    def __or__(self, other: Needs) -> Needs:
        extra = ", ".join(x for x in (self.extra_network, other.extra_network) if x)
        return Needs(
            self.teacher_output or other.teacher_output,
            self.teacher_features or other.teacher_features,
            self.student_features or other.student_features,
            extra,
            self.teacher_stage or other.teacher_stage,
        )

    def describe(self) -> list[str]:
        """Short words for tables: 'teacher output', 'student features', ..."""
        words = [
            label
            for label, on in (
                ("teacher output", self.teacher_output),
                ("teacher features", self.teacher_features),
                ("student features", self.student_features),
                ("teacher stage", self.teacher_stage),
            )
            if on
        ]
        return [*words, self.extra_network] if self.extra_network else words


@dataclass
class SetupContext:
    """What a term may use at set-up (never the trainer). ``None`` where the caller does not
    know it (a plain training loop has no run folder and no fixed patch size)."""

    student: nn.Module
    teacher: nn.Module | None
    student_spec: ArchSpec | None
    teacher_spec: ArchSpec | None
    student_channels: list[int]
    teacher_channels: list[int]
    device: torch.device
    step_random: StepRandom
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    run_dir: Path | None = None
    batch_size: int | None = None  # images per process and step
    patch_size: int | None = None  # LR training patch side
    student_weights: str | None = None  # where the student's initial weights came from
    teacher_weights: str | None = None  # the teacher's checkpoint file
    teacher_preset: str | None = None
    method: str = ""
    teacher_stage: str | None = None  # the method's declared teacher stage
    stage_products: dict[str, nn.Module] = field(default_factory=dict)
    log: Callable[[str], None] = print


class LossTerm(nn.Module):
    """Base class. ``forward`` returns the unweighted scalar value of the term."""

    name: str = ""

    def forward(self, ctx: StepContext) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:
        return self.name

    def setup(self, ctx: SetupContext) -> None:
        """Called once the networks are built (check sizes, load or copy weights)."""

    def student_input(self, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """What the student sees; PISR's teacher stage feeds it E(HR). Default: the LR image."""
        return lr

    def teacher_input(
        self, lr: torch.Tensor, hr: torch.Tensor, current: torch.Tensor
    ) -> torch.Tensor:
        """What the teacher sees; PISR's teacher sees an encoding of the HR image. Default: as is."""
        return current

    def extra_outputs(self, run_dir: Path) -> dict[Path, tuple[dict[str, torch.Tensor], dict]]:
        """Files to write beside every checkpoint: path -> (tensors, string metadata)."""
        return {}

    def stage_products(self) -> dict[str, nn.Module]:
        """What a teacher stage hands to the method that follows it (PISR: the encoder)."""
        return {}


TermBuilder = Callable[["LossOptions", TermEnv], LossTerm]
NeedsOf = Callable[["LossOptions"], Needs]


@dataclass(frozen=True)
class TermSpec:
    """The declaration of a term. ``options`` is the dataclass of a section that
    :class:`facd.distill.options.LossOptions` does not have (a term added from outside)."""

    name: str
    section: str
    needs: NeedsOf
    builder: TermBuilder
    weight_key: str = "weight"
    options: type | None = None
    summary: str = ""
    #: the files the term writes beside each checkpoint (its ``extra_outputs``), by name
    outputs: tuple[str, ...] = ()

    def weight(self, opts: Any) -> float:
        return float(getattr(getattr(opts, self.section), self.weight_key))

    def build(self, opts: LossOptions, env: TermEnv) -> LossTerm:
        term = self.builder(opts, env)
        term.name = self.name
        return term


#: The term declarations, in the order their values are summed. Each built-in module declares
#: its terms with :func:`register_term`, as a plugin does.
TERMS: Registry[TermSpec] = Registry(
    "loss term",
    builtin=(
        "facd.distill.pixel",  # l1_gt, l1_t
        "facd.distill.contrastive",  # contrast
        "facd.distill.fakd",
        "facd.distill.lfd",
        "facd.distill.csd",
        "facd.distill.pisr",  # vid
    ),
)


def register_term(
    name: str,
    *,
    section: str | None = None,
    needs: Needs | NeedsOf = Needs(),
    options: type | None = None,
    weight_key: str = "weight",
    summary: str = "",
    outputs: tuple[str, ...] = (),
) -> Callable[[TermBuilder], TermBuilder]:
    """Decorator declaring a term built by the decorated ``fn(opts, env) -> LossTerm``.

    ``section`` (default: ``name``) is the ``loss:`` section holding its options and weight;
    ``options`` its dataclass when the section is new. ``needs`` is a :class:`Needs` or a
    function of the resolved options returning one. ``outputs`` names the files its
    ``extra_outputs`` writes beside each checkpoint (a run folder counts them as facd's).
    A taken name is a one-line :class:`ConfigError`.
    """

    def deco(fn: TermBuilder) -> TermBuilder:
        needs_of = needs if callable(needs) else (lambda _o, n=needs: n)
        spec = TermSpec(name, section or name, needs_of, fn, weight_key, options, summary, outputs)
        TERMS.register(name, spec, fn.__module__)
        return fn

    return deco
