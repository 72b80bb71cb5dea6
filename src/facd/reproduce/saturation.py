"""The saturation check of a protocol (``saturation:``; :data:`~facd.reproduce.protocol.SATURATION_RULE`):
is a network trained out by its schedule?

Each network it checks (the teacher, and the first seed of each named row) is trained again with
its schedule ``factor`` times as long (iterations and learning-rate milestones scaled), into
``OUT/saturation/<name>-x<factor>/``; both are measured on the validation split, never on the
benchmark sets, and ``saturation-<name>.json`` records the gain and whether it is below
``threshold_db``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from facd.fileio import sha256_file
from facd.reproduce.jobrunner import JobRunner
from facd.reproduce.protocol import canonical_config, scaled_schedule
from facd.reproduce.records import (
    RESULT_VERSION,
    fingerprint,
    read_json,
    read_jsonl,
    val_curve,
    write_json,
)


class SaturationTarget(NamedTuple):
    """A network the saturation check trains again with a longer schedule."""

    name: str  # "teacher" or the run id of a row's first seed
    config: Callable[[], dict]  # its training config (made when the check runs, after sweeps)
    weights: Path  # the network the long run is compared with
    ref_deps: list[str]  # the tasks that make ``weights``
    run_deps: list[str]  # the tasks the long run needs (its teacher, its weight sweep)


class SaturationCheck:
    """The saturation tasks of ``jobs``' protocol."""

    def __init__(self, jobs: JobRunner) -> None:
        self.jobs = jobs
        self.p = jobs.p
        self.results = Path(jobs.p.results_dir)

    def run_dir(self, name: str) -> Path:
        """The run folder of network ``name``'s long run."""
        return self.jobs.out / "saturation" / f"{name}-x{self.p.saturation.factor}"

    def task_run(self, target: SaturationTarget) -> bool:
        """Train the long run of a saturation check (``factor`` times the schedule). It does not
        need the network it is compared with, so it starts early: a failed check changes the
        schedule of everything else."""
        long_cfg = scaled_schedule(target.config(), self.p.saturation.factor)
        return self.jobs.train(f"saturation-{target.name}", long_cfg, self.run_dir(target.name))

    def task_check(self, target: SaturationTarget) -> bool:
        """Measure the target's weights and its long run (trained by :meth:`task_run`, schedule
        ``factor`` times as long) on the validation split; publish ``saturation-<name>.json``
        with the gain and the verdict against ``threshold_db``."""
        from facd.train.config import load_config, portable_paths

        sat = self.p.saturation
        name, weights = target.name, target.weights
        if not weights.is_file():  # a row published earlier whose run folder is gone
            weights = self.results / f"{name}.safetensors"
        long_cfg = scaled_schedule(target.config(), sat.factor)
        resolved = load_config(None, [], base=long_cfg).to_dict()
        key = fingerprint(
            {
                "long": canonical_config(
                    portable_paths(resolved, getattr(self.p, "root_dir", None))
                ),
                "reference": sha256_file(weights),
                "v": RESULT_VERSION,
            }
        )
        result = self.results / f"saturation-{name}.json"
        if read_json(result).get("fingerprint") == key:
            return False
        run_dir = self.run_dir(name)
        long_weights = run_dir / "last.safetensors"
        dirs = list(resolved["data"]["train_dirs"])  # the network's own training folders
        ev = self.jobs.split_eval(
            name, [str(weights), str(long_weights)], dirs, run_dir / "split-eval.json"
        )
        base, long = ev["models"][str(weights)], ev["models"][str(long_weights)]
        gain = long["psnr_y"] - base["psnr_y"]
        timing = read_json(run_dir / "repro_timing.json")
        write_json(
            result,
            {
                "kind": "saturation",
                "network": name,
                "split": ev["split"],
                "images": ev["images"],
                "factor": sat.factor,
                "iterations": [
                    resolved["train"]["iterations"] // sat.factor,
                    resolved["train"]["iterations"],
                ],  # fmt: skip
                "psnr_y": [base["psnr_y"], long["psnr_y"]],
                "gain_db": gain,
                "threshold_db": sat.threshold_db,
                "saturated": gain < sat.threshold_db,
                "weights": str(weights),
                "curve": val_curve(read_jsonl(run_dir / "metrics.jsonl")),
                "train_s": timing.get("train_s"),
                "eval_s": ev["eval_s"],
                "fingerprint": key,
            },
        )
        return True
