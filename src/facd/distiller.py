"""The public distillation API: :class:`Distiller`, a module that turns a batch into loss terms.

``Distiller(student, teacher, method, **options)`` owns everything a method adds to a
training step: the feature taps, the regressors and other trained loss modules, the frozen
teacher's forward pass and the cross-rank gathering of contrastive negatives. Called on a batch
``(lr, hr)`` it returns a :class:`DistillOutput`: the weighted ``total`` to back-propagate and
the value of every named term. It does not own the optimizer, the data or the loop; ``facd
train`` is one loop built on it (:mod:`facd.train.trainer`), a user's own plain PyTorch, DDP or
Lightning loop is another, and both take the same steps.

Choices:

- Trained parameters are the student's and the loss modules' (``parameters()``, and
  ``state_dict()`` keys ``student.*`` and ``terms.*``). The teacher is frozen and kept out of
  both (its weights come from its own checkpoint), but ``.to()``/``.cuda()`` move it too.
- Taps: a network the architecture registry knows (it carries an ``ArchSpec`` as ``.spec``,
  e.g. from ``facd.archs.build_model``) gets FAKD's default taps; for any other module, name
  them (``student_taps=[...]``, ``teacher_taps=[...]``, dotted module paths). Channel counts are
  read from one dry run on a tiny input (no random numbers are drawn).
- Options: keyword arguments are ``loss:`` sections of a config, e.g.
  ``contrast={"weight": 2 / 255}``; ``loss=`` passes fully resolved options instead.
- Initialisation: loss modules (regressors, heads) are initialised from torch's generator when
  the distiller is built, after the teacher: a teacher given as a file is built, then loaded,
  and its build draws from the generator, as ``facd train`` does. So ``torch.manual_seed(s)``,
  the student, then ``Distiller(student, "teacher.safetensors", ...)`` starts where ``facd
  train`` with seed ``s`` starts.
- Randomness: terms that draw (CSD's order of negatives) take a per-step generator from
  ``step_random``, seeded from (``seed``, step, rank); the step advances after every forward in
  training mode (set ``distiller.iteration`` when resuming).
- A teacher stage (PISR's): a method that declares ``teacher_stage`` needs that stage's method
  trained first. Train ``Distiller(net, None, <the stage's method>)`` in your loop, then pass it
  as ``teacher_stage=`` to ``Distiller(student, net, <the method>)``, which takes what the stage
  produced (PISR: its encoder; ``facd train`` reads the file the stage wrote instead).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from facd.archs.spec import ArchSpec
from facd.distill import crossrank
from facd.distill import terms as _terms
from facd.distill.inputs import (
    check_batch,
    check_networks,
    check_outputs,
    check_teacher_finite,
    unwrap_teacher,
)
from facd.distill.methods import active_terms, get_method, needs_of, resolve_loss
from facd.distill.options import LossOptions
from facd.distill.pixel import adaptive_indicator
from facd.distill.taps import FeatureTaps, default_taps, tap_channels
from facd.distill.terms import LossTerm, Needs, SetupContext, StepContext, StepRandom, TermEnv
from facd.errors import ConfigError
from facd.messages import warn


class DistillOutput(NamedTuple):
    """One step's loss: ``total`` (weighted sum, float32) and each term's unweighted value.

    ``total == sum(weights[n] * terms[n])``; ``alpha`` is FACD's per-sample indicator (Eq. 1,
    None without a teacher) and ``sr`` the student's output.
    """

    total: torch.Tensor
    terms: dict[str, torch.Tensor]
    weights: dict[str, float]
    alpha: torch.Tensor | None
    sr: torch.Tensor

    def weighted(self) -> dict[str, torch.Tensor]:
        """Each term times its weight."""
        return {n: self.weights[n] * v.float() for n, v in self.terms.items()}


@dataclass
class RunInfo:
    """Facts of a training run that some terms check at set-up (all optional)."""

    seed: int = 0
    rank: int | None = None  # default: the default process group's rank
    world_size: int | None = None
    run_dir: Path | None = None
    batch_size: int | None = None  # images per process and step
    patch_size: int | None = None  # LR patch side
    student_weights: str | None = None
    teacher_weights: str | None = None
    teacher_preset: str | None = None
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr)


def _spec_of(model: nn.Module | None) -> ArchSpec | None:
    spec = getattr(model, "spec", None)
    return spec if isinstance(spec, ArchSpec) else None


def _load_teacher(ref: str, student: ArchSpec | None) -> nn.Module:
    """A teacher named by a checkpoint file (facd, official or BasicSR) or a preset; a preset
    is built at the student's scale (its weights are random: a warning says so)."""
    from facd.archs.io import load_model
    from facd.archs.spec import PRESETS, warn_untrained

    if ref in PRESETS:
        if student is None:
            raise ConfigError(
                f"teacher preset {ref!r} needs a scale, and the student has no spec to take it "
                f"from: pass the teacher as a network, build_model(preset_spec({ref!r}, 4))"
            )
        warn_untrained(ref)
        return load_model(ref, student.scale)[0]
    return load_model(Path(ref))[0]


def _device_of(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def active_loss(loss: LossOptions) -> tuple[dict[str, float], Needs]:
    """What a :class:`Distiller` of ``loss`` computes: its terms with a non-zero weight (name ->
    weight, in declaration order) and what they need together; a one-line ConfigError when no
    term is switched on. The trainer asks it before the networks are loaded."""
    used = active_terms(loss)
    if not used:
        raise ConfigError("no loss term has a non-zero weight; check 'method' and 'loss'")
    return dict(used), needs_of(loss)


class Distiller(nn.Module):
    """Student plus a method's loss modules; ``forward(lr, hr)`` returns a :class:`DistillOutput`.

    ``method`` is a declared method (``facd methods`` lists them). ``teacher`` is a network, a
    checkpoint file (loaded strictly, weights only), the ``Upscaler`` of ``facd.load`` (its
    network is used), or None for a method that needs none. See the module docstring for taps,
    options and teacher stages, and :mod:`facd.distill.inputs` for the networks and batches it
    refuses (a :class:`~facd.errors.DistillerError` with one line each).
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | str | Path | None,
        method: str,
        *,
        student_taps: Sequence[str] | None = None,
        teacher_taps: Sequence[str] | None = None,
        teacher_stage: Distiller | None = None,
        seed: int = 0,
        loss: LossOptions | None = None,
        run: RunInfo | None = None,
        device: torch.device | str | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        run = run or RunInfo(seed=seed)
        self.method = get_method(method)
        if loss is not None and options:
            raise TypeError("pass loss options either as loss= or as keyword sections, not both")
        self.loss = loss if loss is not None else resolve_loss(method, options or None)
        used, self.needs = active_loss(self.loss)
        if self.needs.teacher and teacher is None:
            raise ConfigError(f"method {method!r} needs a teacher network")
        teacher = unwrap_teacher(teacher) if self.needs.teacher else None
        teacher_file = run.teacher_weights
        if isinstance(teacher, str | Path):  # a checkpoint: facd, official or BasicSR
            teacher_file = str(teacher)
            teacher = _load_teacher(teacher_file, _spec_of(student))
        check_networks(student, teacher)
        if teacher is not None:
            check_teacher_finite(teacher, teacher_file)
        self._batch_checked = False  # the first call also checks values and output sizes
        if teacher is not None:
            teacher.eval().requires_grad_(False)
        self._teacher = [teacher]  # a list: frozen, not part of parameters() or state_dict()
        self.student = student
        self.student_spec, self.teacher_spec = _spec_of(student), _spec_of(teacher)
        self.student_tap_paths = (
            self._tap_paths(student_taps, self.student_spec, "student")
            if self.needs.student_features
            else None
        )
        self.teacher_taps: FeatureTaps | None = None
        if teacher is not None and self.needs.teacher_features:
            paths = self._tap_paths(teacher_taps, self.teacher_spec, "teacher")
            self.teacher_taps = FeatureTaps(teacher, paths)
        env = TermEnv(
            student=self.student_spec,
            teacher=self.teacher_spec,
            student_channels=(
                tap_channels(student, self.student_tap_paths) if self.student_tap_paths else []
            ),
            teacher_channels=(
                tap_channels(teacher, self.teacher_taps.paths)
                if teacher is not None and self.teacher_taps
                else []
            ),
        )
        self.terms = nn.ModuleDict({n: _terms.TERMS[n].build(self.loss, env) for n in used})
        self.weights = used
        self.taps = FeatureTaps(student, self.student_tap_paths) if self.student_tap_paths else None
        size, rank = crossrank.world()
        rank = run.rank if run.rank is not None else rank
        self.step_random = StepRandom(run.seed, rank)
        target = torch.device(device) if device is not None else _device_of(student)
        self.to(target)
        products: dict[str, nn.Module] = {}
        if teacher_stage is not None:
            if teacher_stage.method.name != self.method.teacher_stage:
                raise ConfigError(
                    f"teacher_stage is a {teacher_stage.method.name!r} distiller, but method "
                    f"{method!r} declares teacher stage {self.method.teacher_stage!r}"
                )
            products = teacher_stage.stage_products()
        ctx = SetupContext(
            student=student,
            teacher=teacher,
            student_spec=self.student_spec,
            teacher_spec=self.teacher_spec,
            student_channels=env.student_channels,
            teacher_channels=env.teacher_channels,
            device=target,
            step_random=self.step_random,
            seed=run.seed,
            rank=rank,
            world_size=run.world_size if run.world_size is not None else size,
            run_dir=run.run_dir,
            batch_size=run.batch_size,
            patch_size=run.patch_size,
            student_weights=run.student_weights,
            teacher_weights=run.teacher_weights,
            teacher_preset=run.teacher_preset,
            method=self.method.name,
            teacher_stage=self.method.teacher_stage,
            stage_products=products,
            log=run.log,
        )
        for term in self._terms():
            term.setup(ctx)

    @staticmethod
    def _tap_paths(given: Sequence[str] | None, spec: ArchSpec | None, role: str) -> list[str]:
        if given:
            return list(given)
        if spec is None:
            raise ConfigError(
                f"the {role} is not a network of the architecture registry: name its feature "
                f"taps ({role}_taps=[...], dotted module paths)"
            )
        paths = default_taps(spec)
        if len(set(paths)) < len(paths):
            warn(
                f"the {role}'s default taps repeat a module, {paths}: {spec.describe()} is too "
                "shallow for three distinct taps, so one feature is distilled twice; use a deeper "
                f"network or name the taps ({role}_taps=[...] in the Python API)"
            )
        return paths

    def _terms(self) -> list[LossTerm]:
        return [t for t in self.terms.values() if isinstance(t, LossTerm)]

    @property
    def teacher(self) -> nn.Module | None:
        return self._teacher[0]

    @property
    def iteration(self) -> int:
        """Completed training steps (seeds the per-step random streams)."""
        return self.step_random.iteration

    @iteration.setter
    def iteration(self, value: int) -> None:
        self.step_random.iteration = int(value)

    def _apply(self, fn: Callable, recurse: bool = True) -> Distiller:  # type: ignore[override]
        """``.to()``, ``.cuda()``, ``.float()``... also move the frozen teacher."""
        super()._apply(fn, recurse)
        if self.teacher is not None:
            self.teacher._apply(fn, recurse)
        return self

    # -- one step ---------------------------------------------------------------------------
    def teacher_forward(
        self, lr: torch.Tensor, hr: torch.Tensor
    ) -> tuple[torch.Tensor | None, list[torch.Tensor] | None]:
        """The frozen teacher's output (float32) and tapped features, without gradients."""
        teacher = self.teacher
        if teacher is None:
            return None, None
        with torch.no_grad():
            t_in = lr
            for term in self._terms():
                t_in = term.teacher_input(lr, hr, t_in)
            sr_t = teacher(t_in).float()
            feats = [f.detach() for f in self.teacher_taps.features] if self.teacher_taps else None
        return sr_t, feats

    def forward(self, lr: torch.Tensor, hr: torch.Tensor) -> DistillOutput:
        first = not self._batch_checked
        check_batch(lr, hr, self.student_spec.scale if self.student_spec else None, first)
        sr_t, feats_t = self.teacher_forward(lr, hr)
        x = lr
        for term in self._terms():
            x = term.student_input(x, hr)
        sr_s = self.student(x)
        if first:
            check_outputs(hr, sr_s, sr_t)
            self._batch_checked = True
        alpha = adaptive_indicator(sr_s, sr_t, hr) if sr_t is not None else None
        ctx = StepContext(
            lr=x,
            hr=hr,
            sr_s=sr_s,
            sr_t=sr_t,
            feats_s=self.taps.features if self.taps else None,
            feats_t=feats_t,
            alpha=alpha,
            data_lr=lr,
        )
        values = {name: term(ctx) for name, term in self.terms.items()}
        total = sum(self.weights[n] * v.float() for n, v in values.items())
        assert isinstance(total, torch.Tensor)
        if self.training:
            self.step_random.iteration += 1
        return DistillOutput(total, values, dict(self.weights), alpha, sr_s)

    # -- declared outputs -------------------------------------------------------------------
    def extra_outputs(self, run_dir: Path) -> dict[Path, tuple[dict[str, torch.Tensor], dict]]:
        """Files the terms write beside every checkpoint (PISR's stage 1: the encoder)."""
        out: dict[Path, tuple[dict[str, torch.Tensor], dict]] = {}
        for term in self._terms():
            out.update(term.extra_outputs(Path(run_dir)))
        return out

    def stage_products(self) -> dict[str, nn.Module]:
        """What this distiller, as a teacher stage, hands to the method that follows."""
        out: dict[str, nn.Module] = {}
        for term in self._terms():
            out.update(term.stage_products())
        return out

    def __repr__(self) -> str:
        """One short line per part: method, networks, taps and term weights (not the module
        tree that ``nn.Module`` prints; ``describe()`` has the terms' details)."""

        def net(model: nn.Module | None, spec: ArchSpec | None) -> str:
            return "None" if model is None else spec.describe() if spec else type(model).__name__

        lines = [
            f"method={self.method.name!r}",
            f"student={net(self.student, self.student_spec)}",
            f"teacher={net(self.teacher, self.teacher_spec)}",
        ]
        if self.student_tap_paths:
            t_paths = self.teacher_taps.paths if self.teacher_taps else []
            lines.append(f"taps=student {self.student_tap_paths}, teacher {t_paths}")
        lines.append("weights=" + ", ".join(f"{n} {w:.4g}" for n, w in self.weights.items()))
        return "Distiller(\n" + "".join(f"  {line},\n" for line in lines) + ")"

    def describe(self) -> list[str]:
        """Lines for a run's log: taps, terms and trained loss modules."""
        lines = []
        if self.student_tap_paths:
            t_paths = self.teacher_taps.paths if self.teacher_taps else []
            lines.append(f"taps: student {self.student_tap_paths}, teacher {t_paths}")
        named = {t.name: t for t in self._terms()}
        terms = ", ".join(f"{w:.4g} x {named[n].describe()}" for n, w in self.weights.items())
        lines.append(f"loss: {terms}")
        extra = sum(p.numel() for p in self.terms.parameters())
        if extra:
            lines.append(f"trained loss modules: {extra:,} parameters")
        return lines
