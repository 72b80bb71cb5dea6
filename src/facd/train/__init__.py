"""Training: :func:`run` trains (or distils) one run into its folder, the one sequence behind
``facd train``, the quickstart and the reproduction jobs (docs/api.md).

The submodules are the loop's parts (:mod:`facd.train.config`, :mod:`facd.train.loop`,
:mod:`facd.train.rundir`, ...); they are imported when :func:`run` is called, so that importing
one of them stays light.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facd.train.config import ResolvedConfig

__all__ = ["prepare", "run"]

Config = str | Path | Mapping[str, Any]


def prepare(
    config: Config,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    overrides: Sequence[str] = (),
) -> ResolvedConfig:
    """Load and check ``config`` and the run folder ``out`` without writing anything; returns
    the resolved config. The checks of :func:`run` (see there), for a caller that takes the
    lock itself (the launcher of ``facd train --nproc``)."""
    from facd.errors import ConfigError
    from facd.train.config import load_config
    from facd.train.rundir import check_config_not_in_run, check_run

    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other; pass one of them")
    out = Path(out)
    if isinstance(config, Mapping):
        rcfg = load_config(None, list(overrides), base=dict(config))
    else:
        rcfg = load_config(config, list(overrides))
        check_config_not_in_run(config, out)
    check_run(out, rcfg, resume, overwrite)
    if overwrite:
        _check_inputs_survive(rcfg, out)
    return rcfg


def _check_inputs_survive(rcfg: ResolvedConfig, run_dir: Path) -> None:
    """``overwrite`` must not delete the weights this run starts from."""
    from facd.errors import ConfigError
    from facd.train.rundir import owned_files

    replaced = {(run_dir / rel).resolve() for rel in owned_files(run_dir)}
    for role in ("student", "teacher"):
        net = getattr(rcfg.config, role, None)
        weights = getattr(net, "weights", None)
        if weights and Path(weights).resolve() in replaced:
            raise ConfigError(
                f"'{role}.weights' {weights} is inside --out {run_dir}, whose files --overwrite "
                "would delete; copy it elsewhere first, or choose another --out"
            )


def run(
    config: Config,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    overrides: Sequence[str] = (),
    progress: bool = True,
    stop_on_sigint: bool = False,
) -> dict[str, Any]:
    """Train the run of ``config`` (a YAML file, or a config as a mapping) into the folder
    ``out``, as ``facd train CONFIG --out OUT`` does; returns the run's summary.

    1. The folder is locked while the run trains (:class:`facd.train.rundir.RunLock`; a second
       writer is refused with :class:`~facd.train.rundir.RunDirBusy`). Under ``torchrun`` only
       rank 0 locks, and none does when the launcher of ``facd train --nproc`` holds the lock.
    2. Nothing is written before the config and the folder pass the checks of ``facd train``:
       ``overrides`` (``key=value``) are applied and the config validated; a config file
       inside ``out`` is refused; a folder holding an earlier run is refused unless ``resume``
       (continue its latest training state, refused if the config differs in more than the
       resumable keys, or the training images or teacher weights changed) or ``overwrite``
       (delete its facd files once the set-up has succeeded; refused when the run's own
       weights are among them). ``resume`` on a folder without a state starts from scratch.
    3. :func:`facd.train.loop.run_training` trains (in the process group of ``torchrun`` when
       its environment is set). ``stop_on_sigint``: Ctrl-C stops at a checkpoint like SIGTERM.
    """
    from facd.train.distributed import init_distributed, shutdown
    from facd.train.loop import run_training
    from facd.train.rundir import lock_run_dir

    out = Path(out)
    lock = lock_run_dir(out) if os.environ.get("RANK", "0") == "0" else None
    try:
        rcfg = prepare(config, out, resume=resume, overwrite=overwrite, overrides=overrides)
        dist_ctx = init_distributed(rcfg.config.train.device)
        try:
            # config.yaml is written by run_training once the set-up has succeeded
            return run_training(
                rcfg,
                out,
                resume=resume,
                dist_ctx=dist_ctx,
                progress=progress,
                overwrite=overwrite,
                stop_on_sigint=stop_on_sigint,
            )
        finally:
            shutdown(dist_ctx)
    finally:
        if lock is not None:
            lock.release()
