"""Run a training job: progress bar, logging, validation, checkpoints, pre-emption."""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from tqdm import tqdm

from facd.archs.io import save_model
from facd.data.patches import TrainPatches
from facd.train.config import ResolvedConfig
from facd.train.distributed import DistContext, all_reduce_mean, barrier
from facd.train.logger import RunLogger
from facd.train.trainer import Trainer


def run_training(
    rcfg: ResolvedConfig,
    run_dir: Path,
    resume: bool = False,
    dist_ctx: DistContext | None = None,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict:
    """Train until ``train.iterations`` (or ``stop_after`` more steps). Returns a summary."""
    dist_ctx = dist_ctx or DistContext()
    cfg = rcfg.config
    trainer = Trainer(rcfg, run_dir, dist_ctx, log=lambda m: print(m, file=sys.stderr))
    resumed = trainer.resume() if resume else False
    if dist_ctx.is_main:
        for line in trainer.describe():
            print(line, file=sys.stderr)
        if resumed:
            print(f"resumed from iteration {trainer.iteration}", file=sys.stderr)
    start = trainer.iteration
    total = cfg.train.iterations
    end = total if stop_after is None else min(total, start + stop_after)
    dataset = TrainPatches(
        cfg.data.train_dirs,
        cfg.scale,
        cfg.data.patch_size,
        cfg.train.batch_size,
        total,
        seed=cfg.seed,
        augment=cfg.data.augment,
        sample_slice=dist_ctx.sample_slice(cfg.train.batch_size),
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        sampler=range(start, end),
        num_workers=cfg.data.num_workers,
        pin_memory=trainer.device.type == "cuda",
        persistent_workers=False,
    )
    logger = (
        RunLogger(run_dir, resume_from=start if resumed else None) if dist_ctx.is_main else None
    )
    trainer.install_signal_handlers()
    bar = tqdm(
        total=total,
        initial=start,
        disable=not (progress and dist_ctx.is_main),
        dynamic_ncols=True,
        desc="train",
        file=sys.stderr,
    )
    sums: dict[str, float] = defaultdict(float)
    count = 0
    t0 = time.perf_counter()
    last_val: dict = {}
    for lr, hr in loader:
        out = trainer.train_step(lr, hr)
        trainer.iteration += 1
        it = trainer.iteration
        bar.update(1)
        if out is not None:
            for k, v in out.items():
                sums[k] += v
            count += 1
        if it % cfg.train.log_every == 0 or it == end:
            means = all_reduce_mean(
                {k: v / max(count, 1) for k, v in sums.items()}, dist_ctx, trainer.device
            )
            record = {
                "iteration": it,
                "epoch": round(trainer.epoch_of(it), 4),
                "lr": trainer.optimizer.param_groups[0]["lr"],
                **means,
                "it_per_s": count / max(time.perf_counter() - t0, 1e-9),
            }
            if logger:
                logger.log(record)
            bar.set_postfix(_postfix(means), refresh=False)
            sums.clear()
            count = 0
            t0 = time.perf_counter()
        if it % cfg.train.iters_per_epoch == 0 and trainer.alpha_counts[1] > 0:
            counts = all_reduce_mean(
                {"z": trainer.alpha_counts[0], "n": trainer.alpha_counts[1]},
                dist_ctx,
                trainer.device,
            )
            if logger:
                logger.log(
                    {
                        "iteration": it,
                        "epoch": it // cfg.train.iters_per_epoch,
                        "alpha0_frac_epoch": counts["z"] / counts["n"],
                    }
                )
            trainer.alpha_counts = [0.0, 0.0]
        if cfg.val.every and it % cfg.val.every == 0 and it != end:
            last_val = _validate(trainer, logger, it, dist_ctx)
        if it % cfg.train.save_every == 0 and it != end:
            trainer.save()
        if trainer.stop_requested:
            break
    bar.close()
    if trainer.iteration == end and end > start:
        last_val = _validate(trainer, logger, trainer.iteration, dist_ctx)
    trainer.save()
    barrier(dist_ctx)
    if logger:
        logger.close()
    if trainer.stop_requested and dist_ctx.is_main:
        print(
            f"stopped by signal at iteration {trainer.iteration}; checkpoint saved, "
            "continue with --resume",
            file=sys.stderr,
        )
    return {
        "iteration": trainer.iteration,
        "val": last_val,
        "best_psnr": trainer.best_psnr,
        "stopped_by_signal": trainer.stop_requested,
    }


def _validate(trainer: Trainer, logger: RunLogger | None, it: int, dist_ctx: DistContext) -> dict:
    if not dist_ctx.is_main or not trainer.cfg.val.sets:
        return {}
    results = trainer.validate()
    first = results[trainer.cfg.val.sets[0]]["psnr_y"]
    if logger:
        logger.log({"iteration": it, "val": results})
    if first > trainer.best_psnr:
        trainer.best_psnr = first
        save_model(
            trainer.run_dir / "best.safetensors",
            trainer.model.student,
            trainer.student_spec,
            {"iteration": it, "method": trainer.cfg.method, "val_psnr_y": first},
        )
    return results


def _postfix(means: dict[str, float]) -> dict[str, str]:
    out = {}
    for k, v in means.items():
        if k == "it_per_s":
            continue
        out["a0" if k == "alpha0" else k] = f"{v:.3g}"
    return out
