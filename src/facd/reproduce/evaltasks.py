"""The evaluation tasks of a protocol, and the result records they publish.

Under the protocol's ``results_dir``: ``teacher.json`` and ``bicubic.json`` (the reference
rows), ``teacher-split.json`` (the teacher on the validation split, where the regime's gap is
measured there), ``<run id>.json`` with ``<run id>.safetensors`` (a student: its numbers, curve, alpha = 0
fraction, timings and config), ``gradshare-<run id>.json`` (each loss term's share of the
gradient) and ``alpha<P>-<run id>.json`` (the alpha = 0 fraction after training on P-pixel
patches). Each is cached by its fingerprint.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from facd.fileio import copy_file, sha256_file
from facd.reproduce.evaljob import DONE_MARKER
from facd.reproduce.jobrunner import TaskGroup
from facd.reproduce.protocol import Row
from facd.reproduce.records import (
    RESULT_VERSION,
    alpha0_summary,
    final_terms,
    fingerprint,
    finished_iteration,
    load_config_dict,
    loss_curve,
    read_json,
    read_jsonl,
    val_curve,
    write_json,
)


class Evaluations(TaskGroup):
    """The evaluation tasks of a protocol."""

    def task_teacher(self) -> bool:
        """Evaluate the teacher, keeping its SR images for the Table 13 analogue."""
        weights = Path(self.p.teacher.weights)
        sha = sha256_file(weights)
        result = self.results / "teacher.json"
        key = fingerprint({"sha": sha, "eval": self.p.eval.sets, "v": RESULT_VERSION})
        teacher_sr = self.jobs.teacher_sr
        if read_json(result).get("fingerprint") == key and (teacher_sr / DONE_MARKER).is_file():
            return False
        doc = self.jobs.evaluate(
            "eval-teacher", str(weights), self.out / "teacher-eval.json", teacher_sr
        )
        doc.update(
            kind="teacher",
            label=self.p.teacher.label,
            weights=str(weights),
            weights_sha256=sha,
            train_config=self.p.teacher.config,
            fingerprint=key,
        )
        write_json(result, doc)
        return True

    def task_teacher_split(self) -> bool:
        """The teacher's Y-PSNR on the validation split, for the regime's gap measured there
        (``report.regime.gap_on: split``): ``teacher-split.json``, with the images found in
        the training folders of the gap row's runs."""
        weights = Path(self.p.teacher.weights)
        sha = sha256_file(weights)
        row = self.p.row(self.p.report.regime.gap_row)
        data = load_config_dict(self.configs.row_config(row, row.seeds[0]))["data"]
        key = fingerprint({"sha": sha, "split": self.p.val_split, "v": RESULT_VERSION})
        result = self.results / "teacher-split.json"
        if read_json(result).get("fingerprint") == key:
            return False
        out = self.out / "teacher-split-eval.json"
        doc = self.jobs.split_eval("teacher", [str(weights)], list(data["train_dirs"]), out)
        write_json(
            result,
            {
                "kind": "teacher-split",
                "split": self.p.val_split,
                "psnr_y": doc["models"][str(weights)]["psnr_y"],
                "weights_sha256": sha,
                "fingerprint": key,
            },
        )
        return True

    def task_bicubic(self) -> bool:
        result = self.results / "bicubic.json"
        key = fingerprint(
            {"eval": self.p.eval.sets, "teacher": sha256_file(Path(self.p.teacher.weights))}
        )
        if read_json(result).get("fingerprint") == key:
            return False
        doc = self.jobs.evaluate("eval-bicubic", "bicubic", self.out / "bicubic-eval.json", None)
        doc.update(kind="bicubic", fingerprint=key)
        write_json(result, doc)
        return True

    def task_student(self, row: Row, seed: int) -> bool:
        """Publish a trained run's weights and evaluate them: ``<run id>.json``."""
        rid = row.run_id(seed)
        if self.configs.is_cached(row, seed):
            return False
        run_dir = self.out / rid
        weights = self.results / f"{rid}.safetensors"
        self.results.mkdir(parents=True, exist_ok=True)
        copy_file(run_dir / "last.safetensors", weights)
        ev = self.jobs.evaluate(f"eval-{rid}", str(weights), run_dir / "eval.json", None)
        records = read_jsonl(run_dir / "metrics.jsonl")
        speeds = sorted(r["it_per_s"] for r in records if "it_per_s" in r)
        timing = read_json(run_dir / "repro_timing.json")
        doc = {
            "kind": "student",
            "run_id": rid,
            "row": row.name,
            "method": row.method,
            "group": row.group,
            "seed": seed,
            "protocol": self.p.name,
            "weights": str(weights),
            "weights_sha256": sha256_file(weights),
            "params": ev["params"],
            "iterations": finished_iteration(run_dir),
            "sets": ev["sets"],
            "teacher_psnr": ev["teacher_psnr"],
            "alpha0": alpha0_summary(records),
            "curve": val_curve(records),
            "loss_curve": loss_curve(records),
            "final_terms": final_terms(records),
            "timing": {
                "train_s": timing.get("train_s"),
                "eval_s": ev["eval_s"],
                "teacher_psnr_s": ev["teacher_psnr_s"],
                "median_it_per_s": speeds[len(speeds) // 2] if speeds else None,
            },
            "config": yaml.safe_load((run_dir / "config.yaml").read_text()),
            "fingerprint": self.configs.row_fingerprint(row, seed),
        }
        if timing.get("shared_with"):  # the training of an identical run (Trainings.share)
            doc["shared_with"] = timing["shared_with"]
        write_json(self.results / f"{rid}.json", doc)
        return True

    def task_gradshare(self, row: Row, seed: int) -> bool:
        """Each loss term's share of the student's gradient beside its share of the loss
        (:mod:`facd.reproduce.gradshare`), measured after training from the run's last
        training state on a fixed batch (seed 0): ``gradshare-<run id>.json``. Nothing is
        measured per step, so no run's fingerprint depends on it. Skipped, with a log line,
        when the run folder is gone (a published protocol keeps only the weights)."""
        rid = row.run_id(seed)
        weights = self.results / f"{rid}.safetensors"
        if not weights.is_file():
            return False
        key = fingerprint({"s": sha256_file(weights), "kind": "gradshare", "batch_seed": 0})
        result = self.results / f"gradshare-{rid}.json"
        if read_json(result).get("fingerprint") == key:
            return False
        run_dir = self.out / rid
        if not (run_dir / "checkpoints").is_dir():
            self.log(f"gradshare-{rid}: no run folder with its training state; not measured")
            return False
        from facd.reproduce.gradshare import run_gradient_shares

        doc = run_gradient_shares(run_dir, seed=0)
        doc.pop("run_dir", None)
        doc.update(kind="gradshare", run_id=rid, fingerprint=key)
        write_json(result, doc)
        return True

    def task_alpha(self, row: Row, seed: int) -> bool:
        """alpha = 0 fraction of a run measured after training on ``report.regime.alpha_patch``
        pixel patches (:mod:`facd.reproduce.alphapatch`); ``alpha<P>-<run id>.json``."""
        reg = self.p.report.regime
        rid = row.run_id(seed)
        weights = self.results / f"{rid}.safetensors"
        teacher = Path(self.configs.teacher_weights_for(row))
        data = load_config_dict(self.configs.row_config(row, seed))["data"]
        key = fingerprint(
            {
                "s": sha256_file(weights),
                "t": sha256_file(teacher),
                "p": reg.alpha_patch,
                "n": reg.alpha_samples,
            }
        )
        result = self.results / f"alpha{reg.alpha_patch}-{rid}.json"
        if read_json(result).get("fingerprint") == key:
            return False
        out = self.out / rid / f"alpha{reg.alpha_patch}.json"
        job = {
            "kind": "alpha",
            "student": str(weights),
            "teacher": str(teacher),
            "train_dirs": list(data["train_dirs"]),
            "exclude": data.get("exclude"),
            "scale": self.p.scale,
            "patch_size": reg.alpha_patch,
            "samples": reg.alpha_samples,
            "out": str(out),
        }
        self.jobs.run_job(f"alpha-{rid}", job)
        doc = json.loads(out.read_text())
        doc.update(kind="alpha", run_id=rid, fingerprint=key)
        write_json(result, doc)
        return True
