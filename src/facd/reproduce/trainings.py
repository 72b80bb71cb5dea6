"""The training tasks of a protocol: its teacher (when its weights are absent), its teacher
stages, and every row's runs.

A run whose published result stands is not trained again; a finished training run without
results is only evaluated; an interrupted one is continued from its latest state
(:meth:`facd.reproduce.jobrunner.JobRunner.train`). A row at a chosen weight whose run folder
holds a run at another weight moves it to ``OUT/superseded/<run id>-<n>/`` first. A run that is
the very run of an earlier row (equal fingerprints) is not trained twice: it copies that row's
finished run folder (:meth:`Trainings.share`).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from facd.fileio import copy_file, copy_tree, sha256_file
from facd.reproduce.jobrunner import TaskGroup
from facd.reproduce.protocol import Row
from facd.reproduce.records import (
    loss_curve,
    read_json,
    read_jsonl,
    stage_extras,
    write_json,
)

#: What a shared run's folder takes from its twin's: what the evaluation and the report read
#: (and its ``checkpoints`` folder, the training state the gradient shares are measured from).
SHARED_FILES = ("config.yaml", "last.safetensors", "best.safetensors", "metrics.jsonl")


class Trainings(TaskGroup):
    """The training tasks of a protocol."""

    def task_teacher(self) -> bool:
        """Train the protocol's teacher when its weights file is absent, and copy it there."""
        weights = Path(self.p.teacher.weights)
        if weights.is_file():
            return False
        self.log(f"teacher weights {weights} absent: training them with {self.p.teacher.config}")
        cfg = self.p.teacher_train_config()
        run_dir = self.out / "teacher"
        self.jobs.train("teacher", cfg, run_dir)
        copy_file(run_dir / "last.safetensors", weights)
        return True

    def task_stage(self, stage: str) -> bool:
        """Train a teacher stage (e.g. PISR's E(Y) teacher) and publish its weights."""
        cfg = self.p.stage_config(stage)
        run_dir = self.out / stage
        published = self.results / f"{stage}.json"
        trained = self.jobs.train(stage, cfg, run_dir)
        if not trained and published.is_file():
            return False
        self.results.mkdir(parents=True, exist_ok=True)
        copy_file(run_dir / "last.safetensors", self.results / f"{stage}.safetensors")
        for name, target in stage_extras(stage):
            if (run_dir / name).is_file():
                copy_file(run_dir / name, self.results / target)
        timing = read_json(run_dir / "repro_timing.json")
        write_json(
            published,
            {
                "kind": stage,
                "config": yaml.safe_load((run_dir / "config.yaml").read_text()),
                "train_s": timing.get("train_s"),
                "weights_sha256": sha256_file(run_dir / "last.safetensors"),
                "loss_curve": loss_curve(read_jsonl(run_dir / "metrics.jsonl")),
            },
        )
        return True

    def task_run(self, row: Row, seed: int) -> bool:
        """Train run ``seed`` of ``row`` unless its published result stands, or take the
        training of an earlier row's identical run (:meth:`share`)."""
        rid = row.run_id(seed)
        if self.configs.is_cached(row, seed):
            return False
        cfg = self.configs.row_config(row, seed)
        twin = self.configs.twin(row, seed)
        if twin is not None and self.jobs.is_finished(cfg, self.out / twin.run_id(seed)):
            return self.share(twin.run_id(seed), rid, cfg)
        self.jobs.train(rid, cfg, self.out / rid)
        return True

    def share(self, twin_rid: str, rid: str, cfg: dict) -> bool:
        """Copy the finished run folder ``twin_rid`` (the same config and seed: the same run)
        to ``rid``'s, so that each row's result reads a folder of its own, and mark it
        (``repro_timing.json``: ``shared_with``, no training time of its own). A folder of
        ``rid`` that holds another run is set aside first, never deleted."""
        src, dst = self.out / twin_rid, self.out / rid
        if self.jobs.is_finished(cfg, dst):
            return False
        if dst.exists():
            self.jobs.set_aside(dst, f"not the finished run of {twin_rid}")
        dst.mkdir(parents=True)
        for name in SHARED_FILES:
            if (src / name).is_file():
                copy_file(src / name, dst / name)
        if (src / "checkpoints").is_dir():  # the training state, for the gradient shares
            copy_tree(src / "checkpoints", dst / "checkpoints")
        write_json(dst / "repro_timing.json", {"train_s": 0.0, "shared_with": twin_rid})
        self.log(f"{rid}: the same run as {twin_rid} (equal fingerprints); its training is shared")
        return True
