"""The time of one training step of a ``facd train`` config, shared by the benchmark scripts.

``time_train_step`` builds the config's :class:`~facd.train.trainer.Trainer` in a temporary run
folder and times ``Trainer.train_step`` on one fixed random batch of the config's patch size and
batch size (seeded, so every method sees the same input): ``warm`` steps first, then ``steps``
timed ones, synchronising the GPU around them. Wall and process CPU seconds per step.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path


def time_train_step(
    cfg: dict, steps: int, warm: int = 3, device: str = "cpu", work: Path | None = None
) -> dict:
    """``{"wall_s_per_it", "cpu_s_per_it", "steps"}`` of ``cfg`` (a config dict) on ``device``;
    the run folder goes under ``work`` (default: the system's temporary folder)."""
    import torch

    from facd.train.config import load_config
    from facd.train.trainer import Trainer

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    rcfg = load_config(None, [], base=cfg)
    c = rcfg.config
    with tempfile.TemporaryDirectory(dir=work) as run:
        trainer = Trainer(rcfg, Path(run), log=lambda m: None)
        p, s, b = c.data.patch_size, c.scale, c.train.batch_size
        g = torch.Generator().manual_seed(0)
        lr = torch.rand(b, 3, p, p, generator=g)
        hr = torch.rand(b, 3, p * s, p * s, generator=g)
        for _ in range(warm):
            trainer.train_step(lr, hr)
        sync()
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            trainer.train_step(lr, hr)
        sync()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"wall_s_per_it": wall / steps, "cpu_s_per_it": cpu / steps, "steps": steps}
