"""The training tasks of a protocol: its teacher (when its weights are absent), its teacher
stages, and every row's runs.

A run whose published result stands is not trained again; a finished training run without
results is only evaluated; an interrupted one is continued from its latest state
(:meth:`facd.reproduce.jobrunner.JobRunner.train`). A row at a chosen weight whose run folder
holds a run at another weight moves it to ``OUT/superseded/<run id>-<n>/`` first.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from facd.fileio import copy_file, sha256_file
from facd.reproduce.jobrunner import TaskGroup
from facd.reproduce.protocol import Row
from facd.reproduce.records import (
    loss_curve,
    read_json,
    read_jsonl,
    stage_extras,
    write_json,
)


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
        """Train run ``seed`` of ``row`` unless its published result stands."""
        rid = row.run_id(seed)
        if self.configs.is_cached(row, seed):
            return False
        cfg = self.configs.row_config(row, seed)
        self.jobs.train(rid, cfg, self.out / rid)
        return True
