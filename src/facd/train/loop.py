"""Run a training job: progress bar, logging, validation, checkpoints, pre-emption."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from tqdm import tqdm

from facd.archs.io import save_model
from facd.data.patches import TrainPatches
from facd.fileio import atomic_write_text
from facd.train.config import ResolvedConfig
from facd.train.distributed import DistContext, all_reduce_mean, any_rank, barrier
from facd.train.logger import RunLogger
from facd.train.rundir import begin_run, claim_logs, remove_stale_temps
from facd.train.state import StorageError, storage_errors
from facd.train.trainer import Trainer


def run_training(
    rcfg: ResolvedConfig,
    run_dir: Path,
    resume: bool = False,
    dist_ctx: DistContext | None = None,
    progress: bool = True,
    stop_after: int | None = None,
    overwrite: bool = False,
    stop_on_sigint: bool = False,
) -> dict:
    """Train until ``train.iterations`` (or ``stop_after`` more steps). Returns a summary.

    ``overwrite``: delete the files of an earlier run in ``run_dir`` once the set-up has
    succeeded (see :func:`facd.train.rundir.begin_run`). ``stop_on_sigint``: SIGINT
    stops the run at a checkpoint like SIGTERM (the ranks of ``facd train --nproc``, to which
    torchrun passes the launcher's Ctrl-C); otherwise it raises ``KeyboardInterrupt``.
    The caller holds the run folder's lock (the CLI does).
    """
    dist_ctx = dist_ctx or DistContext()
    if dist_ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(rcfg, run_dir, dist_ctx, log=lambda m: print(m, file=sys.stderr))
    with contextlib.ExitStack() as cleanup:
        trainer.install_signal_handlers()
        cleanup.callback(trainer.restore_signal_handlers)
        if stop_on_sigint:
            term = signal.getsignal(signal.SIGTERM)
            if callable(term):
                old = signal.signal(signal.SIGINT, term)
                cleanup.callback(signal.signal, signal.SIGINT, old)
        return _run(
            trainer, rcfg, run_dir, resume, dist_ctx, progress, stop_after, cleanup, overwrite
        )


def _run(
    trainer: Trainer,
    rcfg: ResolvedConfig,
    run_dir: Path,
    resume: bool,
    dist_ctx: DistContext,
    progress: bool,
    stop_after: int | None,
    cleanup: contextlib.ExitStack,
    overwrite: bool = False,
) -> dict:
    """Set up, train from the start iteration to the end one, save and summarise."""
    start = _start(trainer, run_dir, resume, dist_ctx)
    cfg = rcfg.config
    end = (
        cfg.train.iterations
        if stop_after is None
        else min(cfg.train.iterations, start + stop_after)
    )
    dataset = _dataset(rcfg, dist_ctx, progress)
    if dist_ctx.is_main:
        _write_run_header(trainer, rcfg, run_dir, overwrite)
    run = _Steps(trainer, dist_ctx, start, end)
    run.open(cleanup, run_dir, progress)
    stopped = run.train(_loader(trainer, dataset, start, end))
    return run.finish(stopped)


def _start(trainer: Trainer, run_dir: Path, resume: bool, dist_ctx: DistContext) -> int:
    """Clean a crash's temporary files, resume if asked, print the set-up; the start iteration."""
    if dist_ctx.is_main:
        remove_stale_temps(run_dir)  # left by a write that a crash interrupted
    resumed = trainer.resume() if resume else False
    if dist_ctx.is_main:
        for line in trainer.describe():
            print(line, file=sys.stderr)
        if resumed:
            print(f"resumed from iteration {trainer.iteration}", file=sys.stderr)
    return trainer.iteration


def _dataset(rcfg: ResolvedConfig, dist_ctx: DistContext, progress: bool) -> TrainPatches:
    """The training patches of this process (its share of every global batch)."""
    cfg = rcfg.config
    dataset = TrainPatches(
        list(cfg.data.train_dirs),
        cfg.scale,
        cfg.data.patch_size,
        cfg.train.batch_size,
        cfg.train.iterations,
        seed=cfg.seed,
        augment=cfg.data.augment,
        sample_slice=dist_ctx.sample_slice(cfg.train.batch_size),
        small_images=cfg.data.small_images,
        exclude=cfg.data.exclude,
        progress=progress,
        unsupported_images=cfg.data.unsupported_images or "error",
    )
    if dataset.unsupported_paths and dist_ctx.is_main:
        names = ", ".join(p.name for p in dataset.unsupported_paths[:3])
        more = ", ..." if len(dataset.unsupported_paths) > 3 else ""
        print(
            f"data: skipped {len(dataset.unsupported_paths)} image(s) that cannot be read as "
            f"8-bit RGB ({names}{more})",
            file=sys.stderr,
        )
    if dataset.skipped and dist_ctx.is_main:
        names = ", ".join(p.name for p in dataset.skipped_paths[:3])
        more = ", ..." if dataset.skipped > 3 else ""
        print(
            f"data: skipped {dataset.skipped} image(s) smaller than the HR patch "
            f"({names}{more}; {len(dataset.paths)} used)",
            file=sys.stderr,
        )
    return dataset


def _write_run_header(
    trainer: Trainer, rcfg: ResolvedConfig, run_dir: Path, overwrite: bool
) -> None:
    """Rank 0, once set-up has succeeded: open the validation sets (a wrong name fails before
    anything is written), clear an earlier run (``--overwrite``), write the manifest
    (:func:`facd.train.rundir.begin_run`) and config.yaml."""
    trainer.prepare_validation()
    extras = [p.relative_to(run_dir).as_posix() for p in trainer.model.extra_outputs(run_dir)]
    removed = begin_run(run_dir, rcfg, overwrite, trainer.resumed_from is not None, extras)
    if removed:
        print(f"--overwrite: deleted {len(removed)} file(s) of the earlier run in "
              f"{run_dir}", file=sys.stderr)  # fmt: skip
    with storage_errors(run_dir / "config.yaml"):
        atomic_write_text(run_dir / "config.yaml", rcfg.to_yaml())


def _loader(
    trainer: Trainer, dataset: TrainPatches, start: int, end: int
) -> torch.utils.data.DataLoader:
    """Batches ``start .. end - 1``; the base seed comes from its own stream, not the global RNG."""
    workers = trainer.cfg.data.num_workers
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        sampler=range(start, end),
        num_workers=workers,
        pin_memory=trainer.device.type == "cuda",
        persistent_workers=False,
        worker_init_fn=_worker_init if workers else None,
        generator=trainer.step_random.generator("data_loader", start),  # not the global RNG
    )


class _Steps:
    """The training steps of one run, with their logging, validation and checkpoints."""

    def __init__(self, trainer: Trainer, dist_ctx: DistContext, start: int, end: int) -> None:
        self.trainer, self.dist_ctx = trainer, dist_ctx
        self.cfg = trainer.cfg
        self.start, self.end = start, end
        self.logger: RunLogger | None = None
        self.bar: tqdm | None = None
        self.sums: dict[str, float] = defaultdict(float)
        self.count = 0
        self.t0 = time.perf_counter()
        self.last_val: dict = {}

    def open(self, cleanup: contextlib.ExitStack, run_dir: Path, progress: bool) -> None:
        """The metrics log (lines after the start iteration are dropped) and the progress bar."""
        if self.dist_ctx.is_main:
            with storage_errors(run_dir / "metrics.jsonl"):
                self.logger = RunLogger(run_dir, resume_from=self.start)
            claim_logs(run_dir, self.logger.files)
            cleanup.push(_closer(self.logger))  # also when training fails
        self.bar = tqdm(
            total=self.cfg.train.iterations,
            initial=self.start,
            disable=not (progress and self.dist_ctx.is_main),
            dynamic_ncols=True,
            desc="train",
            file=sys.stderr,
        )
        cleanup.callback(self.bar.close)

    def train(self, loader: torch.utils.data.DataLoader) -> bool:
        """Run the steps; True when a signal stopped them early."""
        for lr, hr in loader:
            if _stop_requested(self.trainer, self.dist_ctx):
                return True
            self.step(lr, hr)
        return False

    def step(self, lr: torch.Tensor, hr: torch.Tensor) -> None:
        trainer = self.trainer
        out = trainer.train_step(lr, hr)
        trainer.iteration += 1
        it = trainer.iteration
        assert self.bar is not None
        self.bar.update(1)
        if out is not None:
            for k, v in out.items():
                self.sums[k] += v
            self.count += 1
        if it % self.cfg.train.log_every == 0 or it == self.end:
            self.log_means(it)
        if it % self.cfg.train.iters_per_epoch == 0 and trainer.alpha_counts[1] > 0:
            self.log_epoch_alpha(it)
        if self.cfg.val.every and it % self.cfg.val.every == 0 and it != self.end:
            self.last_val = _validate(trainer, self.logger, it, self.dist_ctx)
        if it % self.cfg.train.save_every == 0 and it != self.end:
            trainer.save()

    def log_means(self, it: int) -> None:
        """One metrics line: the means since the last line, over all ranks."""
        trainer = self.trainer
        count = self.count
        means = all_reduce_mean(
            {k: v / max(count, 1) for k, v in self.sums.items()}, self.dist_ctx, trainer.device
        )
        record = {
            "iteration": it,
            "epoch": round(trainer.epoch_of(it), 4),
            "lr": trainer.optimizer.param_groups[0]["lr"],
            **means,
            # steps this line averages: fewer than log_every after a resume or skipped batches
            "iterations_averaged": count,
            "it_per_s": count / max(time.perf_counter() - self.t0, 1e-9),
        }
        _log(self.logger, record)
        assert self.bar is not None
        self.bar.set_postfix(_postfix(means), refresh=False)
        self.sums.clear()
        self.count = 0
        self.t0 = time.perf_counter()

    def log_epoch_alpha(self, it: int) -> None:
        """The epoch's fraction of samples with alpha = 0 (FACD's indicator), over all ranks."""
        trainer = self.trainer
        counts = all_reduce_mean(
            {"z": trainer.alpha_counts[0], "n": trainer.alpha_counts[1]},
            self.dist_ctx,
            trainer.device,
        )
        _log(
            self.logger,
            {
                "iteration": it,
                "epoch": it // self.cfg.train.iters_per_epoch,
                "alpha0_frac_epoch": counts["z"] / counts["n"],
            },
        )
        trainer.alpha_counts = [0.0, 0.0]

    def finish(self, stopped: bool) -> dict:
        """Final validation (when the end was reached), checkpoint, summary."""
        trainer = self.trainer
        assert self.bar is not None
        self.bar.close()
        if trainer.iteration == self.end and self.end > self.start:
            self.last_val = _validate(trainer, self.logger, trainer.iteration, self.dist_ctx)
        trainer.save()
        barrier(self.dist_ctx)
        if stopped and self.dist_ctx.is_main:
            print(
                f"stopped by signal at iteration {trainer.iteration}; checkpoint saved, "
                "continue with --resume",
                file=sys.stderr,
            )
        return {
            "iteration": trainer.iteration,
            "val": self.last_val,
            "best_psnr": trainer.best_psnr,
            "stopped_by_signal": stopped,
        }


def _validate(trainer: Trainer, logger: RunLogger | None, it: int, dist_ctx: DistContext) -> dict:
    if not dist_ctx.is_main or not trainer.cfg.val.enabled:
        return {}
    results = trainer.validate()
    first = next(iter(results.values()))["psnr_y"]  # the split, or the first set
    _log(logger, {"iteration": it, "val": results})
    if first > trainer.best_psnr:
        trainer.best_psnr = first
        best = trainer.run_dir / "best.safetensors"
        with storage_errors(best):
            save_model(
                best,
                trainer.model.student,
                trainer.student_spec,
                {"iteration": it, "method": trainer.cfg.method, "val_psnr_y": first},
            )
    return results


def _log(logger: RunLogger | None, record: dict) -> None:
    if logger is not None:
        with storage_errors(logger.path):
            logger.log(record)


def _stop_requested(trainer: Trainer, dist_ctx: DistContext) -> bool:
    """A pre-emption signal on any rank stops every rank at the same iteration."""
    return any_rank(trainer.stop_requested, dist_ctx, trainer.device)


def _worker_init(_worker_id: int) -> None:
    """Data workers ignore SIGTERM and SIGINT: the main process stops them (a Ctrl-C reaches
    the whole process group; the workers would otherwise die and the loader raise its own
    error in place of the interruption)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.excepthook = _quiet_lost_connection(sys.excepthook)


def _quiet_lost_connection(previous):
    """In a data worker, uncaught exceptions reach ``sys.excepthook`` only from helper threads:
    multiprocessing's resource sharer, which hands tensors' file descriptors to the main
    process, prints a traceback when the main process stops (Ctrl-C, a signal) while a hand-over
    is pending. Connection errors are expected then and dropped; anything else is printed."""

    from multiprocessing import AuthenticationError  # a handshake cut short

    def hook(kind, value, tb):
        if issubclass(kind, (ConnectionError, EOFError, OSError, AuthenticationError)):
            return
        previous(kind, value, tb)

    return hook


def _closer(logger: RunLogger):
    """An exit callback closing the logs. A failure to close (a full disk makes the TensorBoard
    writer fail too) is a :class:`StorageError` on a clean exit; while another error is on its
    way out it is dropped, so that the user sees the first error, not the echo of it."""

    def close(exc_type: type[BaseException] | None, _exc: object, _tb: object) -> bool:
        try:
            logger.close()
        except Exception as err:  # noqa: BLE001 - tensorboardX raises various types
            if exc_type is None:
                reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
                raise StorageError(f"cannot write the logs in {logger.run_dir}: {reason}") from None
        return False

    return close


def _postfix(means: dict[str, float]) -> dict[str, str]:
    out = {}
    for k, v in means.items():
        if k in ("it_per_s", "iterations_averaged"):
            continue
        out["a0" if k == "alpha0" else k] = f"{v:.3g}"
    return out
