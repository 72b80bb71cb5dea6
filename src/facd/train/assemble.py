"""A run's :class:`facd.Distiller`, built from its resolved config as ``facd train`` starts it.

The order fixes the random state, so that every caller gets the same initial networks:
``torch.manual_seed(seed)``; the student (built, then its ``student.weights`` loaded if set);
the teacher, only when the method's active terms need one (:func:`facd.distiller.active_loss`),
loaded strictly from ``teacher.weights`` against the config's architecture and scale, frozen;
then the Distiller, which creates the loss modules (regressors, encoders). The trainer
(:class:`facd.train.trainer.Trainer`) and the measurement of a finished run's gradient shares
(:mod:`facd.reproduce.gradshare`) both start here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from facd.archs import build_model
from facd.archs.io import load_model
from facd.archs.spec import ArchSpec
from facd.distill.methods import get_method, missing_stage_message
from facd.distill.terms import Needs
from facd.distiller import Distiller, RunInfo, active_loss
from facd.errors import CheckpointError, ConfigError
from facd.train.config import Config, ResolvedConfig

__all__ = ["build_distiller"]


def build_distiller(
    rcfg: ResolvedConfig,
    device: torch.device | str = "cpu",
    *,
    rank: int = 0,
    world_size: int = 1,
    run_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> Distiller:
    """The Distiller of ``rcfg`` on ``device`` (one of ``world_size`` ranks: its batch is the
    configured batch divided by ``world_size``)."""
    cfg = rcfg.config
    torch.manual_seed(cfg.seed)
    spec = cfg.student.spec(cfg.scale)
    student = build_model(spec)
    if cfg.student.weights:
        loaded, _ = _load_checkpoint(cfg.student.weights, spec, "student")
        student.load_state_dict(loaded.state_dict())
    _, needs = active_loss(rcfg.loss)  # the Distiller's own view of the loss
    teacher = _teacher(cfg, device, needs) if needs.teacher else None
    return Distiller(
        student,
        teacher,
        cfg.method,
        student_taps=cfg.student.taps,
        teacher_taps=cfg.teacher.taps if cfg.teacher is not None else None,
        loss=rcfg.loss,
        device=device,
        run=RunInfo(
            seed=cfg.seed,
            rank=rank,
            world_size=world_size,
            run_dir=run_dir,
            batch_size=cfg.train.batch_size // world_size,
            patch_size=cfg.data.patch_size,
            student_weights=cfg.student.weights,
            teacher_weights=cfg.teacher.weights if cfg.teacher is not None else None,
            teacher_preset=cfg.teacher.preset if cfg.teacher is not None else None,
            log=log,
        ),
    )


def _teacher(cfg: Config, device: torch.device | str, needs: Needs) -> nn.Module:
    """The frozen teacher from ``teacher.weights``; a missing teacher-stage file names the
    stage's own run (e.g. PISR's)."""
    if cfg.teacher is None:
        raise ConfigError(f"method {cfg.method!r} needs a 'teacher' section")
    if not cfg.teacher.weights:
        raise ConfigError(
            "'teacher.weights' is not set: a distillation run needs a trained teacher"
        )
    weights = Path(cfg.teacher.weights)
    if needs.teacher_stage and get_method(cfg.method).teacher_stage and not weights.is_file():
        raise ConfigError(missing_stage_message(cfg.method, weights, cfg.teacher.preset, cfg.scale))
    teacher, _ = _load_checkpoint(cfg.teacher.weights, cfg.teacher.spec(cfg.scale), "teacher")
    return teacher.eval().requires_grad_(False).to(device)


def _load_checkpoint(path: str, expect: ArchSpec, role: str) -> tuple[nn.Module, ArchSpec]:
    """Load ``path`` strictly, checking it against the config's architecture and scale."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{role} weights not found: {p} (set '{role}.weights')")
    return load_model(p, expect=expect)
