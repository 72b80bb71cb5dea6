"""The jobs of a reproduction, each in a process of its own.

Every job runs library functions (``python -m facd.reproduce.job OUT/jobs/<name>.json``), one
process per job so that parallel jobs run with one thread each (``OMP_NUM_THREADS=1``) and a
crash stays in its job; its output goes to ``OUT/logs/<name>.log``. The job processes die with
this process (Linux), so a killed ``facd reproduce`` leaves no training behind that would hold
the run folder's lock.

A train job (:meth:`JobRunner.train`) takes the run folder's lock and always resumes (it starts
from scratch where there is no state yet), so that a run folder an earlier sitting wrote to
(``repro_timing.json``, a config and logs of a run killed before its first checkpoint) is taken
up again rather than refused as not empty. A run already finished with the same config is not
trained again.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facd.errors import FacdError
from facd.fileio import move, open_append
from facd.reproduce.job import write_job
from facd.reproduce.protocol import Protocol
from facd.reproduce.records import add_time, finished_iteration, read_yaml
from facd.train.rundir import config_differences, unresumable_differences

if TYPE_CHECKING:
    from facd.reproduce.runconfig import RunConfigs


class JobRunner:
    """Runs the training and evaluation jobs of protocol ``proto`` under the run folder ``out``
    with the interpreter ``python``, and counts them (``subprocesses``)."""

    def __init__(
        self, proto: Protocol, out: Path, python: str, log: Callable[[str], None] = print
    ) -> None:
        self.p = proto
        self.out = out
        self.python = python
        self.log = log
        self.subprocesses = 0  # how many training/evaluation processes this invocation ran

    @property
    def teacher_sr(self) -> Path:
        """The teacher's SR images of the evaluation sets (for the Table 13 analogue)."""
        return self.out / "teacher-sr"

    def run_job(self, name: str, job: dict[str, Any]) -> None:
        """Run one job (:mod:`facd.reproduce.job`) in a process of its own, output to its log."""
        path = self.out / "jobs" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_job(path, job)
        self._subprocess(name, [self.python, "-m", "facd.reproduce.job", str(path)])

    def _subprocess(self, name: str, cmd: list[str]) -> None:
        logs = self.out / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.subprocesses += 1
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        with open_append(logs / f"{name}.log") as f:
            f.write(f"$ {' '.join(cmd)}\n")
            f.flush()
            code = subprocess.call(
                cmd, stdout=f, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent()
            )
        if code != 0:
            raise FacdError(f"{name}: exit code {code}; see {logs / (name + '.log')}")

    def train(self, name: str, cfg: dict, run_dir: Path) -> bool:
        """Train into ``run_dir``, resuming an interrupted run; timing accumulated.

        Returns False when the run was already finished with this config."""
        from facd.train.config import load_config

        resolved = load_config(None, [], base=cfg).to_dict()
        total = resolved["train"]["iterations"]
        saved = read_yaml(run_dir / "config.yaml")
        if _finished(run_dir, resolved, saved):
            return False
        changed = unresumable_differences(saved, resolved) if saved is not None else []
        if changed:
            self.set_aside(run_dir, f"{', '.join(changed[:3])} differ")
        t0 = time.perf_counter()
        try:
            self.run_job(name, {"kind": "train", "config": cfg, "run_dir": str(run_dir)})
        finally:
            add_time(run_dir / "repro_timing.json", "train_s", time.perf_counter() - t0)
        if finished_iteration(run_dir) != total:
            raise FacdError(f"{name}: training stopped before iteration {total}")
        return True

    def is_finished(self, cfg: dict, run_dir: Path) -> bool:
        """Whether ``run_dir`` holds a run of ``cfg`` trained to its last iteration."""
        from facd.train.config import load_config

        resolved = load_config(None, [], base=cfg).to_dict()
        return _finished(run_dir, resolved, read_yaml(run_dir / "config.yaml"))

    def set_aside(self, run_dir: Path, why: str) -> None:
        """A run folder whose run cannot be resumed with today's config (the protocol, a
        sweep's choice or a default changed since it started: ``why``) moves to
        ``OUT/superseded/<run id>-<n>``, so that the run starts again instead of failing;
        nothing in it is deleted."""
        n = 1
        while (dest := self.out / "superseded" / f"{run_dir.name}-{n}").exists():
            n += 1
        dest.parent.mkdir(parents=True, exist_ok=True)
        move(run_dir, dest)
        self.log(
            f"{run_dir.name}: its run folder holds a run of another config ({why}); moved to {dest}"
        )

    def evaluate(self, name: str, model: str, out_json: Path, keep_sr: Path | None) -> dict:
        """Evaluate ``model``; keep its SR images in ``keep_sr`` (the teacher), or else compare
        them with the teacher's."""
        job = {
            "kind": "eval",
            "model": model,
            "scale": self.p.scale,
            "sets": list(self.p.eval.sets),
            "data_root": self.p.eval.data_root,
            "out": str(out_json),
            "keep_sr": str(keep_sr) if keep_sr is not None else None,
            "teacher_sr": None if keep_sr is not None else str(self.teacher_sr),
        }
        self.run_job(name, job)
        return json.loads(out_json.read_text())

    def split_eval(self, name: str, models: list[str], train_dirs: list[str], out: Path) -> dict:
        """Y-PSNR of ``models`` on the protocol's validation split (its images found in
        ``train_dirs``), by a ``split`` job of its own; the job's JSON, also kept in ``out``."""
        split = self.p.val_split
        assert split is not None  # checked when the protocol was loaded
        job = {
            "kind": "split",
            "models": models,
            "split": split,
            "train_dirs": train_dirs,
            "scale": self.p.scale,
            "out": str(out),
        }
        self.run_job(f"split-{name}", job)
        return json.loads(out.read_text())


def _finished(run_dir: Path, resolved: dict, saved: dict | None) -> bool:
    """Whether ``run_dir`` (its config ``saved``) holds the run of the resolved config
    ``resolved`` trained to its last iteration."""
    total = resolved["train"]["iterations"]
    return finished_iteration(run_dir) == total and not config_differences(saved, resolved)


def _die_with_parent() -> Callable[[], None] | None:
    if os.name != "posix":
        return None
    from facd.train.rundir import die_with_parent

    return die_with_parent


class TaskGroup:
    """One family of a protocol's tasks (trainings, sweeps, evaluations): the runs' configs
    from ``configs``, the jobs run by ``jobs``, progress lines to ``log``."""

    def __init__(self, configs: RunConfigs, jobs: JobRunner, log: Callable[[str], None]) -> None:
        self.configs = configs
        self.jobs = jobs
        self.p = configs.p
        self.results = configs.results
        self.out = jobs.out
        self.log = log
