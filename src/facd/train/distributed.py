"""torch.distributed set-up for runs launched by torchrun (or ``facd train --nproc K``).

Rank ``r`` of ``K`` trains on samples ``[r*B/K, (r+1)*B/K)`` of every global batch of ``B``
(sampling is a pure function of seed, iteration and sample index), DDP averages the gradients,
so the run follows the single-process run with the same global batch up to float rounding.
Only rank 0 writes to the run directory, logs and validates; the other ranks wait for it at
their next collective (gradient all-reduce or barrier). ``FACD_DIST_TIMEOUT_MIN`` (default 60)
bounds that wait, so set it above the time one validation takes.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import torch
import torch.distributed as dist

from facd.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def sample_slice(self, batch_size: int) -> slice:
        """This rank's share of the global batch (contiguous; equal shares)."""
        per = batch_size // self.world_size
        return slice(self.rank * per, (self.rank + 1) * per)


def init_distributed(device_pref: str = "auto") -> DistContext:
    """Join the process group when torchrun's environment variables are set."""
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return DistContext()
    rank = _env_int("RANK", None)
    local_rank = _env_int("LOCAL_RANK", 0)
    if not 0 <= rank < world:
        raise ConfigError(f"environment variable RANK={rank} is outside 0..{world - 1}")
    use_cuda = torch.cuda.is_available() and device_pref != "cpu"
    if use_cuda and local_rank >= torch.cuda.device_count():
        raise ConfigError(
            f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA device(s) are "
            "visible; lower --nproc_per_node"
        )
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        minutes = _env_int("FACD_DIST_TIMEOUT_MIN", 60)
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            timeout=datetime.timedelta(minutes=minutes),
        )
    return DistContext(rank=rank, world_size=world, local_rank=local_rank)


def _env_int(name: str, default: int | None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        if default is None:
            raise ConfigError(
                f"environment variable {name} is not set; launch with torchrun, which sets "
                "RANK, LOCAL_RANK and WORLD_SIZE"
            )
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer") from None


def all_reduce_mean(
    values: dict[str, float], ctx: DistContext, device: torch.device
) -> dict[str, float]:
    if not ctx.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= ctx.world_size
    return dict(zip(keys, t.tolist(), strict=True))


def any_rank(flag: bool, ctx: DistContext, device: torch.device) -> bool:
    if not ctx.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def end_launched_rank(stop_watchdog: Callable[[], None], code: int = 0) -> NoReturn:
    """End a rank of ``facd train --nproc`` that finished (its process group destroyed, its
    files written and closed): stop the launcher watchdog, flush stdout and stderr, and leave
    with ``os._exit``.

    Why not a normal exit: ``destroy_process_group`` does not stop gloo's C++ threads (one
    ``gloo_tcp_loop`` and two ``pt_gloo_runloop`` threads per rank are still running after it,
    also once the DDP model is freed: the C++ process group outlives the Python objects), and
    the watchdog thread never stopped. A normal exit finalises the interpreter and runs the C++
    static destructors while those threads still run, and a ``std::thread`` destroyed while
    joinable calls ``std::terminate``: "terminate called without an active exception",
    SIGABRT, reported by torchrun as a failed run although every step and file was done (seen
    in about 1 of 10 launches on a loaded machine; not reproduced in 39 launches of the same
    command on another one, so this is the race's mechanism as far as it can be observed,
    closed off rather than caught in the act). ``os._exit`` ends the process without
    finalisation: every file of the run was written atomically and closed before, and nothing
    of the rank needs to run at exit.
    """
    stop_watchdog()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
