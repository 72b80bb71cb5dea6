"""Loss terms: small modules, each one named, weighted piece of the total loss.

A method (``facd.distill.methods``) switches terms on by giving them a non-zero weight. The trainer
runs the teacher and the student once per step, fills a :class:`StepContext`, and sums
``weight * term(ctx)`` over the active terms. Terms with parameters (regressors, VID heads) are
trained with the student.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from facd.archs.spec import ArchSpec
from facd.distill.options import LossOptions


@dataclass
class StepContext:
    """What a term may read. Teacher tensors are detached (computed under ``no_grad``)."""

    lr: torch.Tensor
    hr: torch.Tensor
    sr_s: torch.Tensor
    sr_t: torch.Tensor | None = None
    feats_s: list[torch.Tensor] | None = None
    feats_t: list[torch.Tensor] | None = None
    alpha: torch.Tensor | None = None  # (N,) float, Eq. 1 indicator


@dataclass(frozen=True)
class TermEnv:
    """Static facts a term needs at construction."""

    student: ArchSpec
    teacher: ArchSpec | None
    student_channels: list[int]
    teacher_channels: list[int]


class LossTerm(nn.Module):
    """Base class. ``forward`` returns the unweighted scalar value of the term."""

    name: str = ""
    needs_teacher: bool = True  # needs the teacher's output or features
    needs_features: bool = False  # needs the tapped features of both networks

    def forward(self, ctx: StepContext) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:
        return self.name

    def teacher_input(
        self, lr: torch.Tensor, hr: torch.Tensor, current: torch.Tensor
    ) -> torch.Tensor:
        """What the teacher sees; PISR's teacher sees an encoding of the HR image. Default: as is."""
        return current

    def on_setup(self, trainer: object) -> None:
        """Called once the trainer has built the networks (e.g. to copy teacher weights)."""


TermBuilder = Callable[[LossOptions, TermEnv], LossTerm]
_BUILDERS: dict[str, TermBuilder] = {}

# Modules that register terms; imported on first use so unused methods cost nothing.
TERM_MODULES: dict[str, str] = {
    "l1_gt": "facd.distill.pixel",
    "l1_t": "facd.distill.pixel",
    "contrast": "facd.distill.contrastive",
    "fakd": "facd.distill.fakd",
    "lfd": "facd.distill.lfd",
    "csd": "facd.distill.csd",
    "vid": "facd.distill.pisr",
}


def register_term(name: str) -> Callable[[TermBuilder], TermBuilder]:
    def deco(fn: TermBuilder) -> TermBuilder:
        _BUILDERS[name] = fn
        return fn

    return deco


def build_term(name: str, opts: LossOptions, env: TermEnv) -> LossTerm:
    if name not in _BUILDERS:
        importlib.import_module(TERM_MODULES[name])
    term = _BUILDERS[name](opts, env)
    term.name = name
    return term
