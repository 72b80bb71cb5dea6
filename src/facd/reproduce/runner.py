"""Run a reproduction protocol: train every row, evaluate it, publish weights and JSON.

Layout under the run folder ``OUT`` (large, not committed)::

    OUT/<run id>/            run folder of one row and seed (e.g. facd-s0)
    OUT/<stage>/             a teacher stage a method declares (e.g. PISR's pisr-teacher)
    OUT/saturation/<name>-x<f>/  the saturation check's run of a network with its schedule
                             f times as long (``saturation:`` in the protocol)
    OUT/<row>-w<weight>-s<seed>/  run folder of one weight of a row's weight sweep
    OUT/superseded/<run id>-<n>/  a run at a weight its row's sweep no longer chooses
    OUT/teacher-sr/          the teacher's SR images of the evaluation sets (for Table 13)
    OUT/jobs/<task>.json     the job a process ran (its config and run folder, or what it
                             evaluated; see :mod:`facd.reproduce.job`)
    OUT/logs/<task>.log      output of every job process

and under the protocol's ``results_dir`` (small, committed)::

    <run id>.safetensors     the student that was evaluated (the run's last.safetensors)
    <run id>.json            its numbers, curve, alpha = 0 fraction, timings and config
    teacher.json, bicubic.json, <stage>.safetensors (+ _encoder), protocol.json
    teacher-split.json       the teacher on the validation split (regime gap_on: split)
    saturation-<name>.json   the saturation check of the teacher or a row: the validation
                             split's Y-PSNR with the schedule and with it f times as long
    <row>-w<weight>-s<seed>.json  one run of a row's weight sweep: its validation-split Y-PSNR
    sweep-<row>.json         the row's sweep: every weight tried, its score, the chosen weight

This module builds the task graph (:meth:`Reproduction.build_tasks`) and runs it
(:func:`facd.reproduce.scheduler.run_tasks`); the tasks are those of
:mod:`facd.reproduce.trainings` (teacher, teacher stages, rows), :mod:`facd.reproduce.sweeps`
(weight sweeps; :data:`facd.reproduce.protocol.SWEEP_RULE`: the declared weights train in
parallel, then ``sweep:<row>`` chooses on the validation split; the row's runs and those of rows
with ``weight_from: <row>`` wait for that choice), :mod:`facd.reproduce.saturation` and
:mod:`facd.reproduce.evaltasks` (evaluations and the records they publish). What a run is and
its fingerprint: :mod:`facd.reproduce.runconfig`; how a job runs: :mod:`facd.reproduce.jobrunner`.

Caching: a run whose result JSON matches its config fingerprint and whose published weights
match the recorded SHA-256 is skipped; a finished training run without results is only
evaluated; an interrupted one is continued from its latest state. The task keys, their order,
the fingerprints and the file names above are what a protocol half-run by an earlier version of
this runner is finished by: a change to any of them retrains finished runs.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from facd.errors import FacdError
from facd.reproduce.evaltasks import Evaluations
from facd.reproduce.jobrunner import JobRunner
from facd.reproduce.protocol import SPLIT, Protocol, Row, run_id, sweep_run_id, teacher_stage
from facd.reproduce.records import count_params, read_json, write_json
from facd.reproduce.runconfig import RunConfigs
from facd.reproduce.saturation import SaturationCheck, SaturationTarget
from facd.reproduce.scheduler import Outcome, Task, run_tasks
from facd.reproduce.sweeps import Sweeps
from facd.reproduce.trainings import Trainings


class Reproduction:
    """Builds the task graph of a protocol and runs it: which runs are selected (``only``),
    what each task waits for, in which order ready tasks start, and the invocation's record
    (``protocol.json``). The tasks themselves: ``trainings``, ``sweeps``, ``saturation`` and
    ``evaluations``, over the runs' configs (``configs``) and the job processes
    (``jobrunner``)."""

    def __init__(
        self,
        proto: Protocol,
        out: Path,
        jobs: int = 2,
        only: list[str] | None = None,
        log: Callable[[str], None] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.p = proto
        self.out = Path(out)
        self.results = Path(proto.results_dir)
        self.jobs = jobs
        self.only = only or []
        self._log = log or (lambda m: print(m, flush=True))
        self.configs = RunConfigs(proto, self.out, self.log)
        self.jobrunner = JobRunner(proto, self.out, python, self.log)
        self.trainings = Trainings(self.configs, self.jobrunner, self.log)
        self.sweeps = Sweeps(self.configs, self.jobrunner, self.log)
        self.saturation = SaturationCheck(self.jobrunner)
        self.evaluations = Evaluations(self.configs, self.jobrunner, self.log)

    def log(self, msg: str) -> None:
        self._log(f"[{time.strftime('%H:%M:%S')}] {msg}")

    # ---------------------------------------------------------------- selection

    def selected_rows(self) -> list[Row]:
        if not self.only:
            return [r for r in self.p.rows if not r.skip]
        rows = []
        for r in self.p.rows:
            hit = r.name in self.only or any(rid in self.only for rid in r.run_ids())
            if hit and not r.skip:
                rows.append(r)
        unknown = [
            o for o in self.only if o not in {r.name for r in self.p.rows} | set(self.p.run_ids())
        ]
        if unknown:
            raise FacdError(
                f"--only: unknown row(s) {unknown}; rows: {[r.name for r in self.p.rows]}"
            )
        return rows

    def selected_runs(self) -> list[tuple[Row, int]]:
        out = []
        for r in self.selected_rows():
            for seed in r.seeds:
                rid = r.run_id(seed)
                if not self.only or r.name in self.only or rid in self.only:
                    out.append((r, seed))
        return out

    def sweep_sources(self) -> list[Row]:
        """The swept rows whose choice a selected run needs (in protocol order)."""
        needed = {r.weight_source for r, _ in self.selected_runs() if r.weight_source}
        return [r for r in self.p.rows if r.name in needed]

    def saturation_targets(self) -> list[SaturationTarget]:
        """Every network the protocol's ``saturation`` section checks: the teacher and the
        first seed of each named row (only the selected ones with ``--only``)."""
        sat = self.p.saturation
        out: list[SaturationTarget] = []
        if sat.teacher and not self.only:
            teacher_cfg = self.p.teacher_train_config
            out.append(
                SaturationTarget(
                    "teacher", teacher_cfg, Path(self.p.teacher.weights), ["teacher"], []
                )
            )
        selected = {(r.name, seed) for r, seed in self.selected_runs()}
        for name in sat.rows:
            row = self.p.row(name)
            seed = row.seeds[0]
            if (name, seed) not in selected:
                continue
            rid = run_id(name, seed)
            out.append(
                SaturationTarget(
                    rid,
                    partial(self.configs.row_config, row, seed),
                    self.out / rid / "last.safetensors",
                    [f"train:{rid}"],
                    self.train_deps(row),
                )
            )
        return out

    # ---------------------------------------------------------------- the task graph

    def teacher_deps(self, row: Row) -> list[str]:
        """The teacher task a run of ``row`` waits for: its teacher stage, or the teacher when
        its method reads one (a scratch row starts at once)."""
        from facd.distill.methods import get_method

        stage = teacher_stage(row.method)
        if stage is not None:
            return [stage]
        return ["teacher"] if get_method(row.method).needs_teacher else []

    def train_deps(self, row: Row) -> list[str]:
        """The tasks a run of ``row`` at its own or chosen weight waits for: its teacher
        (:meth:`teacher_deps`) and the weight sweep it takes its weight from."""
        sweep = [f"sweep:{row.weight_source}"] if row.weight_source else []
        return self.teacher_deps(row) + sweep

    def twin_deps(self, row: Row, seed: int, runs: list[tuple[Row, int]]) -> list[str]:
        """The selected runs declared before ``row`` at ``seed`` that may be its very run
        (:meth:`Protocol.possible_twins`): it waits for them, so that it can share their
        training."""
        twins = self.p.possible_twins(row, seed)
        return [f"train:{o.run_id(seed)}" for o in twins if (o, seed) in runs]

    def build_tasks(self) -> list[Task]:
        train, evals = self.trainings, self.evaluations
        runs = self.selected_runs()
        tasks = [
            Task("teacher", train.task_teacher),
            Task("eval:teacher", evals.task_teacher, ["teacher"]),
        ]
        if not self.only:
            tasks.append(Task("eval:bicubic", evals.task_bicubic, ["eval:teacher"]))
        reg = self.p.report.regime
        if reg.gap_row and reg.gap_on == SPLIT:
            tasks.append(Task("eval:teacher-split", evals.task_teacher_split, ["teacher"]))
        for stage in dict.fromkeys(s for r, _ in runs if (s := teacher_stage(r.method))):
            tasks.append(Task(stage, partial(train.task_stage, stage)))
        trains, evaluations, sweeps = [], [], []
        # Weight sweeps first: the rows that run at a chosen weight wait for the choice.
        for row in self.sweep_sources():
            dep = self.teacher_deps(row)
            keys = []
            for w in sorted(row.weight_grid):
                key = f"sweep:{sweep_run_id(row.name, w, self.p.sweep_seed)}"
                sweeps.append(Task(key, partial(self.sweeps.task_run, row, w), dep))
                keys.append(key)
            evaluations.append(
                Task(f"sweep:{row.name}", partial(self.sweeps.task_choose, row), keys)
            )
        trains.extend(sweeps)
        # Seed 0 of every row first (then seed 1, ...): a short run still covers every method.
        runs = sorted(runs, key=lambda rs: rs[0].seeds.index(rs[1]))
        for row, seed in runs:
            rid = row.run_id(seed)
            deps = self.train_deps(row) + self.twin_deps(row, seed, runs)
            trains.append(Task(f"train:{rid}", partial(train.task_run, row, seed), deps))
            evaluations.append(
                Task(
                    f"eval:{rid}",
                    partial(evals.task_student, row, seed),
                    [f"train:{rid}", "eval:teacher"],
                )
            )
        for row, seed in runs:  # how much each term can act: seed 0 of every row
            if seed == row.seeds[0]:
                rid = row.run_id(seed)
                evaluations.append(
                    Task(
                        f"gradshare:{rid}",
                        partial(evals.task_gradshare, row, seed),
                        [f"eval:{rid}"],
                    )
                )
        reg = self.p.report.regime
        if reg.alpha0_row and reg.alpha_patch:
            for row, seed in runs:
                if row.name == reg.alpha0_row:
                    rid = row.run_id(seed)
                    evaluations.append(
                        Task(f"alpha:{rid}", partial(evals.task_alpha, row, seed), [f"eval:{rid}"])
                    )
        # Saturation checks: the verdict decides whether every other run's schedule stands, so
        # their long runs start first, the rows' (short) before the teacher's, each row's
        # reference run right after its long run; the comparison waits for both networks.
        targets = self.saturation_targets()
        long_runs = [
            Task(f"satrun:{t.name}", partial(self.saturation.task_run, t), t.run_deps)
            for t in targets
        ]
        refs = {d for t in targets if t.name != "teacher" for d in t.ref_deps}
        first = [t for t in long_runs if t.key != "satrun:teacher"]
        first += [t for t in trains if t.key in refs]
        first += [t for t in long_runs if t.key == "satrun:teacher"]
        trains = first + [t for t in trains if t.key not in refs]
        sats = [
            Task(
                f"saturation:{t.name}",
                partial(self.saturation.task_check, t),
                [*t.ref_deps, f"satrun:{t.name}"],
            )
            for t in targets
        ]
        # Evaluations go first once ready, so results appear while training goes on.
        return tasks[:2] + evaluations + sats + tasks[2:] + trains

    # ---------------------------------------------------------------- run

    def check_sizes(self) -> dict:
        t = count_params(self.p.teacher_net(), self.p.scale)
        s = count_params(self.p.student, self.p.scale)
        if t < self.p.min_param_ratio * s:
            raise FacdError(
                f"the teacher has {t:,} parameters, only {t / s:.1f}x the student's {s:,}; "
                f"the protocol asks for >= {self.p.min_param_ratio:g}x"
            )
        return {"teacher_params": t, "student_params": s, "ratio": t / s}

    def run(self) -> Outcome:
        sizes = self.check_sizes()
        self.out.mkdir(parents=True, exist_ok=True)
        self.results.mkdir(parents=True, exist_ok=True)
        tasks = self.build_tasks()
        n_runs = sum(1 for t in tasks if t.key.startswith("train:"))
        n_sweep = sum(len(r.weight_grid) for r in self.sweep_sources())
        sweeps = f" and {n_sweep} weight-sweep run(s)" if n_sweep else ""
        self.log(
            f"protocol {self.p.name}: {n_runs} student run(s){sweeps}, {self.jobs} parallel "
            "job(s); "
            f"teacher {sizes['teacher_params']:,} params, student {sizes['student_params']:,} "
            f"({sizes['ratio']:.1f}x)"
        )
        t0 = time.perf_counter()
        outcome = run_tasks(tasks, self.jobs, self.log)
        wall = time.perf_counter() - t0
        self.write_protocol_json(sizes, outcome, wall)
        self.log(f"finished in {wall / 60:.1f} min; {len(outcome.failed)} task(s) failed")
        return outcome

    def write_protocol_json(self, sizes: dict, outcome: Outcome, wall: float) -> None:
        import torch

        path = self.results / "protocol.json"
        old = read_json(path)
        invocations = old.get("invocations", []) if old.get("name") == self.p.name else []
        if self.jobrunner.subprocesses or outcome.failed:  # a fully cached re-run: no record
            invocations.append(
                {
                    "date": time.strftime("%Y-%m-%d %H:%M"),
                    "only": self.only,
                    "jobs": self.jobs,
                    "wall_s": round(wall, 1),
                    "task_s": {k: round(v, 1) for k, v in outcome.seconds.items()},
                    "failed": outcome.failed,
                }
            )
        doc = {
            "name": self.p.name,
            "protocol": self.p.to_dict(),
            "sizes": sizes,
            "teacher_weights": self.p.teacher.weights,
            "machine": {
                "cpus": os.cpu_count(),
                "torch": torch.__version__,
                "python": platform.python_version(),
                "processor": platform.processor() or platform.machine(),
            },
            "invocations": invocations,
        }
        write_json(path, doc)
