"""The training loop: one step = frozen teacher forward, student forward, named loss terms.

The trainer is deliberately split: the :class:`facd.Distiller` is the trained part (student +
loss modules, what DDP wraps; the public API a user's own loop uses too); ``Trainer`` owns the
optimizer, schedule, checkpoints and logging, and reads the method's declaration only through
the distiller's ``needs`` (whether to load a teacher) and its declared outputs.

Randomness and bit-exact resume. Nothing draws from the global generators (torch, numpy,
python ``random``) once set-up is over, so a resumed run draws exactly what an uninterrupted
one drew, whatever happens between a save and the resume:

- set-up (``Trainer.__init__`` after ``torch.manual_seed(seed)``): the student's
  initialisation and that of the trained loss modules (FACD/FCD regressors, LFD/LSFD local
  regressors, PISR's encoder and VID heads; a test-only random VGG for CSD). A resume
  overwrites all of them with the saved weights.
- training patches, crops and augmentation (flips, 90-degree rotations): a numpy ``PCG64``
  seeded from (seed, iteration, sample index) in ``facd.data.patches``.
- CSD's random order of negatives: a fresh ``torch.Generator`` per step, ``StepRandom``
  stream ``"csd"`` (the order only changes the summation order of the negatives' distances).
- the DataLoader's base seed (drawn by ``iter(loader)``; it only seeds worker processes, whose
  data does not depend on it): its own generator, ``StepRandom`` stream ``"data_loader"`` at
  the first iteration of the run.
- not random: dropout (no network here has dropout layers), FAKD, FACD/FCD/ICD negatives
  (the other samples of the batch), PISR (no sampling), validation.

A new random consumer takes a generator from the distiller's ``step_random`` (it needs no saved
state). The global states are still saved and restored as a safety net, but only rank 0's
are saved, so under DDP a global draw would not resume exactly on the other ranks.

Bit-exactness also needs the same CPU thread count, torch build and CPU kind, which decide how
float sums are grouped. A state records the thread count of the process that saved it (not in
the resolved config: fingerprints stay), and a CPU run resumed with another count warns in one
line (:meth:`Trainer._warn_other_threads`); it is not refused.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facd.archs.io import save_model
from facd.archs.spec import ArchSpec
from facd.distill.methods import get_method
from facd.distill.taps import FeatureTaps
from facd.distill.terms import StepRandom, derive_seed
from facd.errors import CheckpointError, ConfigError, FacdError, TrainingDiverged
from facd.fileio import storage_errors
from facd.train.assemble import build_distiller
from facd.train.config import ResolvedConfig
from facd.train.distributed import DistContext, any_rank
from facd.train.state import (
    capture_rng,
    find_resumable_state,
    latest_state_path,
    restore_rng,
    save_state,
)
from facd.typedconfig import short_repr

__all__ = ["StepRandom", "Trainer", "TrainingDiverged", "derive_seed"]


def resolve_device(pref: str, dist_ctx: DistContext) -> torch.device:
    """The training device, by the one resolver of :mod:`facd.infer.device`.

    Differences for training: ``auto`` means CUDA if there is a GPU, else the CPU (MPS only when
    named), errors name the config key, and each DDP process takes its own GPU (``LOCAL_RANK``).
    """
    from facd.infer.device import resolve_device as resolve

    name = pref if pref != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if name.strip().lower().startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"'train.device' is {short_repr(pref)} but torch sees no CUDA GPU; set "
            "train.device=cpu or auto"
        )
    try:
        device = resolve(name)
    except FacdError as err:
        raise ConfigError(f"'train.device' is {short_repr(pref)}: {err}") from None
    if device.type == "cuda" and dist_ctx.enabled:
        return torch.device("cuda", dist_ctx.local_rank)
    return device


class Trainer:
    def __init__(
        self,
        rcfg: ResolvedConfig,
        run_dir: Path,
        dist_ctx: DistContext | None = None,
        log: Any = print,
    ) -> None:
        self.rcfg, self.cfg, self.loss_opts = rcfg, rcfg.config, rcfg.loss
        self.run_dir = Path(run_dir)
        self.dist = dist_ctx or DistContext()
        self.log = log if self.dist.is_main else (lambda *a, **k: None)
        cfg = self.cfg
        if cfg.train.batch_size % self.dist.world_size:
            raise ConfigError(
                f"'train.batch_size' {cfg.train.batch_size} is not divisible by {self.dist.world_size} processes"
            )
        self.device = resolve_device(cfg.train.device, self.dist)
        self.method = get_method(cfg.method)
        self.student_spec = cfg.student.spec(cfg.scale)
        self.model = build_distiller(
            rcfg,
            self.device,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            run_dir=self.run_dir,
            log=self.log,
        )
        if cfg.train.channels_last:
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # the teacher too
        if cfg.train.compile:
            self._compile_student()
        self.train_module: nn.Module = self.model
        if self.dist.enabled:
            self.train_module = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=cfg.train.lr)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=cfg.train.milestone_iterations, gamma=cfg.train.lr_gamma
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.train.precision == "fp16")
        self.iteration = 0
        self.best_psnr = -math.inf
        self.alpha_counts = [0.0, 0.0]  # samples with alpha = 0, samples seen, in this epoch
        self.skipped = 0
        self._stop_signal: int | None = None
        self._old_handlers: dict[int, Any] = {}
        self._compile_checked = not cfg.train.compile
        self.resumed_from: Path | None = None

    # -- set-up ---------------------------------------------------------------------------
    def _compile_student(self) -> None:
        """``torch.compile`` the student in place (state-dict keys and tap hooks unchanged).

        The backend is ``inductor`` unless ``FACD_COMPILE_BACKEND`` names another one.
        """
        backend = os.environ.get("FACD_COMPILE_BACKEND", "inductor")
        try:
            self.model.student.compile(backend=backend)
        except Exception as err:  # noqa: BLE001 - reported as a config problem, with the cause
            raise ConfigError(_compile_message(backend, err)) from None

    # views of the distiller (the trained part)
    @property
    def step_random(self) -> StepRandom:
        return self.model.step_random

    @property
    def teacher(self) -> nn.Module | None:
        return self.model.teacher

    @property
    def teacher_spec(self) -> ArchSpec | None:
        return self.model.teacher_spec

    @property
    def teacher_taps(self) -> FeatureTaps | None:
        return self.model.teacher_taps

    @property
    def student_tap_paths(self) -> list[str] | None:
        return self.model.student_tap_paths

    def describe(self) -> list[str]:
        lines = [
            f"method: {self.cfg.method} ({self.method.summary})",
            f"student: {self.student_spec.describe()} "
            f"({sum(p.numel() for p in self.model.student.parameters()):,} parameters)",
        ]
        if self.teacher_spec is not None and self.teacher is not None:
            lines.append(
                f"teacher: {self.teacher_spec.describe()} "
                f"({sum(p.numel() for p in self.teacher.parameters()):,} parameters, frozen)"
            )
        lines.extend(self.model.describe())
        lines.append(
            f"device: {self.device}, precision {self.cfg.train.precision}, "
            f"world size {self.dist.world_size}"
        )
        return lines

    # -- one step -------------------------------------------------------------------------
    def autocast(self):
        prec = self.cfg.train.precision
        if prec == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if prec == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def train_step(self, lr: torch.Tensor, hr: torch.Tensor) -> dict[str, float] | None:
        """One optimisation step. Returns the term values, or None if the batch was skipped."""
        with self._first_compile_guard():
            return self._train_step(lr, hr)

    def _train_step(self, lr: torch.Tensor, hr: torch.Tensor) -> dict[str, float] | None:
        fmt = torch.channels_last if self.cfg.train.channels_last else torch.contiguous_format
        lr = lr.to(self.device, non_blocking=True).contiguous(memory_format=fmt)
        hr = hr.to(self.device, non_blocking=True)
        self.model.iteration = self.iteration
        self.model.train()
        with self.autocast():
            step = self.train_module(lr, hr)
        total, values, alpha = step.total, step.terms, step.alpha
        finite = bool(torch.isfinite(total).item())
        if any_rank(not finite, self.dist, self.device):
            cause = self._blame(lr, hr) if not finite else ""
            self._non_finite(values, local=not finite, cause=cause)  # raises, or skips
            return None
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.cfg.train.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        out = {name: float(v.detach()) for name, v in values.items()}
        out["loss"] = float(total.detach())
        if alpha is not None:
            zeros = float((alpha == 0).sum())
            self.alpha_counts[0] += zeros
            self.alpha_counts[1] += alpha.numel()
            out["alpha0"] = zeros / alpha.numel()
        return out

    @contextlib.contextmanager
    def _first_compile_guard(self):
        """torch.compile fails lazily (first forward/backward): report it as a one-line error."""
        if self._compile_checked:
            yield
            return
        backend = os.environ.get("FACD_COMPILE_BACKEND", "inductor")
        try:
            yield
        except _compile_errors() as err:
            raise ConfigError(_compile_message(backend, err)) from None
        self._compile_checked = True

    def _blame(self, lr: torch.Tensor, hr: torch.Tensor) -> str:
        """What made this batch's loss non-finite when it is not the student: the batch itself,
        or the teacher's output on it (run again, only on this failure path); "" otherwise."""
        if not (bool(torch.isfinite(lr).all()) and bool(torch.isfinite(hr).all())):
            return "the input batch holds NaN or infinite values (the data, not the weights)"
        if self.teacher is None or self.cfg.teacher is None:
            return ""
        with torch.no_grad(), self.autocast():
            sr_t, _ = self.model.teacher_forward(lr, hr)
        if sr_t is None or bool(torch.isfinite(sr_t).all()):
            return ""
        return (
            f"the teacher {self.cfg.teacher.weights} returned NaN or infinite values on this "
            f"batch (its weights overflow in {self.cfg.train.precision}, or are broken): check "
            "teacher.weights"
        )

    def _non_finite(
        self, values: dict[str, torch.Tensor], local: bool = True, cause: str = ""
    ) -> None:
        """Skip the batch (``nan_policy: skip``) or stop, naming the iteration and the term, or
        the cause when it is the batch or the teacher (:meth:`_blame`)."""
        bad = [n for n, v in values.items() if not torch.isfinite(v).all()]
        step = self.iteration + 1
        shown = ", ".join(f"'{n}' is {float(values[n].detach().float())}" for n in bad)
        if cause:
            msg = f"non-finite loss at iteration {step}: {cause} (term {shown or 'total'})"
        elif bad:
            msg = f"non-finite loss at iteration {step}: term {shown}"
        elif local:
            msg = f"non-finite loss at iteration {step}: the weighted total is not finite"
        else:
            msg = f"non-finite loss at iteration {step} in another process"
        limit = self.cfg.train.max_skips
        if self.cfg.train.nan_policy == "skip":
            if self.skipped < limit:
                self.skipped += 1
                self.log(f"warning: {msg}; batch skipped ({self.skipped}/{limit})")
                return None
            msg += f" ({limit} batches skipped already: train.max_skips)"
        last = latest_state_path(self.run_dir)
        where = (
            f"the last good checkpoint is {last} (resume with --resume)"
            if last
            else "no checkpoint was written yet"
        )
        raise TrainingDiverged(f"{msg}; {where}; the weights were not updated with this batch")

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": capture_rng(),
            "sampler": {"seed": self.cfg.seed, "next_iteration": self.iteration},
            "best_psnr": self.best_psnr,
            "alpha_counts": list(self.alpha_counts),
            "skipped": self.skipped,
            "threads": torch.get_num_threads(),  # not in the config: fingerprints stay
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"] and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        restore_rng(state["rng"])
        self.iteration = int(state["iteration"])
        self.best_psnr = float(state["best_psnr"])
        self.alpha_counts = [float(x) for x in state["alpha_counts"]]
        self.skipped = int(state.get("skipped", 0))

    def resume(self) -> bool:
        """Load the newest loadable state of the run directory; False if there is none."""
        found = find_resumable_state(self.run_dir, self.log, quarantine=self.dist.is_main)
        if found is None:
            return False
        path, state = found
        _check_state_fits(state["model"], self.model.state_dict(), path)
        try:
            self.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise CheckpointError(
                f"{path}: training state does not fit this config ({first[:200]})"
            ) from None
        self.resumed_from = path
        self._warn_other_threads(path, state.get("threads"))
        return True

    def _warn_other_threads(self, path: Path, saved: object) -> None:
        """One line when a CPU run resumes with another thread count than the state was saved
        with: the float sums group differently, so the run is not bit-identical to an
        uninterrupted one (last digits). Not a refusal; states from before the record pass."""
        now = torch.get_num_threads()
        if self.device.type != "cpu" or not isinstance(saved, int) or saved == now:
            return
        if self.dist.is_main:
            self.log(
                f"warning: {path} was saved by a process with {saved} CPU threads, this one has "
                f"{now}; float sums group differently, so the resumed run is not bit-identical "
                f"to an uninterrupted one (last digits): set OMP_NUM_THREADS={saved} for an "
                "exact resume"
            )

    def save(self) -> None:
        if not self.dist.is_main:
            return
        state = save_state(
            self.run_dir, self.iteration, self.state_dict(), self.cfg.train.keep_checkpoints
        )
        last = self.run_dir / "last.safetensors"
        with storage_errors(last, f"; the training state {state.name} was saved"):
            save_model(
                last,
                self.model.student,
                self.student_spec,
                {"iteration": self.iteration, "method": self.cfg.method},
            )
        for path, (tensors, meta) in self.model.extra_outputs(self.run_dir).items():
            with storage_errors(path, f"; the training state {state.name} was saved"):
                _write_safetensors(path, tensors, meta)

    # -- validation -----------------------------------------------------------------------
    def prepare_validation(self) -> None:
        """Open the validation sets now, so that a wrong name fails before any training.

        With ``val.split`` the split alone is opened (the benchmark sets are left untouched)."""
        from facd.data.benchmark import BenchmarkSet, SplitSet

        v = self.cfg.val
        if hasattr(self, "_benches"):
            return
        self._benches: list[BenchmarkSet | SplitSet] = []
        if v.split:
            split = SplitSet(v.split, list(self.cfg.data.train_dirs), self.cfg.scale)
            if v.max_images:
                split.hr_paths = split.hr_paths[: v.max_images]
            self._benches.append(split)
            return
        from facd.fetch.store import benchmark_root

        for name in v.sets:
            root = benchmark_root(Path(v.data_root), name)
            if root != Path(v.data_root):
                self.log(
                    f"val: {name} from {root} (facd fetch; val.data_root {v.data_root} lacks it)"
                )
            bench = BenchmarkSet(root, name, self.cfg.scale)
            if v.max_images:
                bench.hr_paths = bench.hr_paths[: v.max_images]
            self._benches.append(bench)

    def validate(self) -> dict[str, dict[str, float]]:
        from facd.evaluate import validate

        self.prepare_validation()
        # a compiled student would recompile for every image size: validate it eagerly
        stance = getattr(torch.compiler, "set_stance", None)  # torch >= 2.6
        eager = (
            stance("force_eager")
            if self.cfg.train.compile and stance is not None
            else contextlib.nullcontext()
        )
        with eager:
            results = {b.name: validate(self.model.student, b, self.device) for b in self._benches}
        self.model.train()
        return results

    # -- signals --------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGUSR1 (pre-emption) ask for a checkpoint and a clean stop."""

        def handler(signum: int, _frame: Any) -> None:
            self._stop_signal = signum

        for sig in (signal.SIGTERM, signal.SIGUSR1):
            with contextlib.suppress(ValueError, OSError):
                self._old_handlers[sig] = signal.signal(sig, handler)

    def restore_signal_handlers(self) -> None:
        for sig, old in self._old_handlers.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, old)
        self._old_handlers.clear()

    @property
    def stop_requested(self) -> bool:
        return self._stop_signal is not None

    def epoch_of(self, iteration: int) -> float:
        return iteration / self.cfg.train.iters_per_epoch


def _write_safetensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """A declared extra output of the distiller (a term's file beside the checkpoint)."""
    from safetensors.torch import save

    from facd.fileio import atomic_write_bytes

    atomic_write_bytes(path, save(tensors, metadata=meta))


def _check_state_fits(saved: dict, own: dict, path: Path) -> None:
    """One-line error when a saved model state does not match the networks of this config."""
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: 'model' is not a state dict")
    missing = sorted(set(own) - set(saved))
    unexpected = sorted(set(saved) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: training state does not fit this config: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]} (was the run started with another student or method?)"
        )
    for key, value in own.items():
        found = saved[key]
        if not isinstance(found, torch.Tensor) or found.shape != value.shape:
            shape = tuple(found.shape) if isinstance(found, torch.Tensor) else type(found).__name__
            raise CheckpointError(
                f"{path}: training state does not fit this config: {key!r} expected "
                f"{tuple(value.shape)}, found {shape}"
            )


def _compile_errors() -> tuple[type[BaseException], ...]:
    """Exception types raised by a failing torch.compile backend."""
    errors: list[type[BaseException]] = []
    with contextlib.suppress(ImportError):
        from torch._dynamo.exc import TorchDynamoException

        errors.append(TorchDynamoException)
    with contextlib.suppress(ImportError):
        from torch._inductor.exc import InductorError

        errors.append(InductorError)
    return tuple(errors) or (RuntimeError,)


def _compile_message(backend: str, err: BaseException) -> str:
    inner = getattr(err, "inner_exception", None) or err.__cause__ or err  # the backend's error
    lines = [ln.strip() for ln in str(inner).splitlines() if ln.strip()]
    cause = f"{type(inner).__name__}: {lines[0][:200]}" if lines else type(inner).__name__
    return (
        f"'train.compile': torch.compile with backend {backend!r} failed ({cause}); "
        "set train.compile=false (inductor on CPU needs a working C++ compiler)"
    )
