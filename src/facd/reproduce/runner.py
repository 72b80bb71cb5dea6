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
    saturation-<name>.json   the saturation check of the teacher or a row: the validation
                             split's Y-PSNR with the schedule and with it f times as long
    <row>-w<weight>-s<seed>.json  one run of a row's weight sweep: its validation-split Y-PSNR
    sweep-<row>.json         the row's sweep: every weight tried, its score, the chosen weight

Weight sweeps (rows with ``weight_grid``; :data:`facd.reproduce.protocol.SWEEP_RULE`): the
declared weights train in parallel, then ``sweep:<row>`` chooses on the validation split,
training the grid's extensions itself when the best weight sits at an end. The row's runs (and
those of rows with ``weight_from: <row>``) wait for that choice and run at the chosen weight,
which their config, and so their fingerprint, holds. Sweep runs use the protocol's
``sweep_seed``, which no row lists, so that no evaluation run is a sweep run: a run chosen for
its score on the split would carry that luck into the row's comparisons.

Caching: a run whose result JSON matches its config fingerprint and whose published weights
match the recorded SHA-256 is skipped; a finished training run without results is only
evaluated; an interrupted one is continued from its latest state. Every job runs library
functions (``python -m facd.reproduce.job JOB.json``), one process per job so that parallel
jobs run with one thread each and a crash stays in its job. A train job takes the run folder's
lock and always resumes (it starts from scratch where there is no state yet), so that a run
folder this runner wrote to in an earlier sitting (``repro_timing.json``, a config and logs of
a run killed before its first checkpoint) is taken up again rather than refused as not empty.
The job processes die with this process (Linux), so a killed ``facd reproduce`` leaves no
training behind that would hold the run folder's lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from facd.errors import CheckpointError, FacdError
from facd.fileio import (
    atomic_write_text,
    copy_file,
    move,
    open_append,
    sha256_file,
)
from facd.reproduce.checks import read_result, run_problems
from facd.reproduce.evaljob import DONE_MARKER
from facd.reproduce.job import write_job
from facd.reproduce.protocol import (
    Protocol,
    Row,
    canonical_config,
    choose_weight,
    format_weight,
    next_weight,
    run_id,
    scaled_schedule,
    sweep_run_id,
    teacher_stage,
    weight_key,
)
from facd.reproduce.scheduler import Outcome, Task, run_tasks
from facd.train.rundir import config_differences

RESULT_VERSION = 1


def fingerprint(obj: Any) -> str:
    """A short stable hash of a JSON-able object (a row's config plus the evaluation sets)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_jsonl(path: Path) -> list[dict]:
    out: list[dict] = []
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a crash
    return out


def finished_iteration(run_dir: Path) -> int:
    """The iteration recorded in ``last.safetensors`` (-1 if there is none)."""
    from facd.archs.io import read_shapes

    last = run_dir / "last.safetensors"
    if not last.is_file():
        return -1
    try:
        _shapes, meta = read_shapes(last)  # the header only, not the tensors
        return int(json.loads(meta.get("iteration", "-1")))
    except (CheckpointError, ValueError, TypeError):  # damaged: not finished
        return -1


def count_params(net: dict, scale: int) -> int:
    from facd.archs import build_model
    from facd.train.config import NetConfig
    from facd.typedconfig import from_dict

    spec = from_dict(NetConfig, {k: v for k, v in net.items() if k != "weights"}).spec(scale)
    return sum(p.numel() for p in build_model(spec).parameters())


def alpha0_summary(records: list[dict]) -> dict | None:
    """The per-epoch fraction of training samples with alpha = 0 (None if never logged)."""
    per_epoch = [(r["epoch"], r["alpha0_frac_epoch"]) for r in records if "alpha0_frac_epoch" in r]
    if not per_epoch:
        return None
    values = [v for _, v in per_epoch]
    tail = values[-max(1, len(values) // 4) :]
    return {
        "per_epoch": per_epoch,
        "mean": sum(values) / len(values),
        "last_quarter_mean": sum(tail) / len(tail),
        "min": min(values),
        "max": max(values),
    }


def final_terms(records: list[dict]) -> dict[str, float]:
    """Mean of each logged loss term (unweighted) and the total over the last quarter of logs."""
    lines = [r for r in records if "loss" in r]
    tail = lines[-max(1, len(lines) // 4) :]
    skip = {"iteration", "epoch", "lr", "it_per_s", "iterations_averaged", "alpha0"}
    keys = [k for k in (tail[0] if tail else {}) if k not in skip]
    return {k: sum(r[k] for r in tail if k in r) / len(tail) for k in keys}


def val_curve(records: list[dict]) -> list[list[float]]:
    """``[iteration, Y-PSNR on the first validation set]`` for every validation line."""
    out = []
    for r in records:
        val = r.get("val")
        if isinstance(val, dict) and val:
            first = next(iter(val.values()))
            out.append([r["iteration"], first["psnr_y"]])
    return out


class SaturationTarget(NamedTuple):
    """A network the saturation check trains again with a longer schedule."""

    name: str  # "teacher" or the run id of a row's first seed
    config: Callable[[], dict]  # its training config (made when the check runs, after sweeps)
    weights: Path  # the network the long run is compared with
    ref_deps: list[str]  # the tasks that make ``weights``
    run_deps: list[str]  # the tasks the long run needs (its teacher, its weight sweep)


class Reproduction:
    """Builds the task graph of a protocol and runs it."""

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
        self.python = python
        self._log = log or (lambda m: print(m, flush=True))
        self.subprocesses = 0  # how many training/evaluation processes this invocation ran

    # ---------------------------------------------------------------- helpers

    def log(self, msg: str) -> None:
        self._log(f"[{time.strftime('%H:%M:%S')}] {msg}")

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

    def teacher_weights_for(self, row: Row) -> str:
        stage = teacher_stage(row.method)
        if stage is not None:
            return str(self.out / stage / "last.safetensors")
        return self.p.teacher.weights

    def row_config(self, row: Row, seed: int, weight: float | None = None) -> dict:
        """The config of a run of ``row``: at ``weight`` if given (a sweep run), else at the
        weight its sweep chose (:meth:`chosen_weight`), else at its fixed ``weight``, else at
        the method's own weight."""
        if weight is None and row.weight_source:
            weight = self.chosen_weight(row)
        elif weight is None:
            weight = row.weight
        return self.p.row_config(row, seed, self.teacher_weights_for(row), weight)

    def chosen_weight(self, row: Row) -> float:
        """The weight the sweep of ``row`` (or of its ``weight_from`` row) chose, read from its
        ``sweep-<row>.json``; refused while that sweep has not chosen for its current grid."""
        source = self.p.row(row.weight_source)
        doc = _read_json(self.results / f"sweep-{source.name}.json")
        if (
            doc.get("kind") != "weight-sweep"
            or doc.get("declared") != sorted(source.weight_grid)
            or doc.get("weight_key") != weight_key(source)
            or doc.get("chosen") is None
        ):
            raise FacdError(
                f"row {row.name!r} runs at the weight chosen by the sweep of row "
                f"{source.name!r}, which has not chosen for its current grid yet "
                f"({self.results / f'sweep-{source.name}.json'}); run the protocol without "
                "--only, or with --only " + source.name
            )
        return float(doc["chosen"])

    def row_fingerprint(self, row: Row, seed: int, weight: float | None = None) -> str:
        """Hash of what the row's result depends on: its **resolved** config (the method's loss
        options filled in, so redefining a method invalidates its cached results), reduced by
        :func:`~facd.reproduce.protocol.canonical_config` (no None values, no options of
        switched-off terms), the teacher's bytes and the evaluation sets. Results stamped by an
        older definition are re-stamped by ``python -m facd.reproduce.refingerprint``.

        Paths (data folders, benchmark root, any weights file) are hashed relative to the
        protocol's root folder (``Protocol.root_dir``; the current directory when it has none),
        in POSIX form, so that a fingerprint names no machine's layout and does not change when
        a config moves a path between relative and absolute, or to a file of its own."""
        from facd.train.config import load_config, portable_paths

        resolved = load_config(None, [], base=self.row_config(row, seed, weight)).to_dict()
        resolved = portable_paths(resolved, getattr(self.p, "root_dir", None))
        if resolved.get("teacher"):  # the teacher is identified by its bytes, not its path
            resolved["teacher"]["weights"] = self._teacher_identity(row)
        return fingerprint(
            {
                "resolved": canonical_config(resolved),
                "eval": self.p.eval.sets,
                "v": RESULT_VERSION,
            }
        )

    def _teacher_identity(self, row: Row) -> str:
        stage = teacher_stage(row.method)
        if stage is not None:
            return f"{stage}:{fingerprint(self.p.stage_identity(stage))}"
        path = Path(self.p.teacher.weights)
        return sha256_file(path) if path.is_file() else "absent"

    def _run_job(self, name: str, job: dict[str, Any]) -> None:
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

    def _train(self, name: str, cfg: dict, run_dir: Path) -> bool:
        """Train into ``run_dir``, resuming an interrupted run; timing accumulated.

        Returns False when the run was already finished with this config."""
        from facd.train.config import load_config

        resolved = load_config(None, [], base=cfg).to_dict()
        total = resolved["train"]["iterations"]
        saved = _read_yaml(run_dir / "config.yaml")
        if finished_iteration(run_dir) == total and not config_differences(saved, resolved):
            return False
        t0 = time.perf_counter()
        try:
            self._run_job(name, {"kind": "train", "config": cfg, "run_dir": str(run_dir)})
        finally:
            _add_time(run_dir / "repro_timing.json", "train_s", time.perf_counter() - t0)
        if finished_iteration(run_dir) != total:
            raise FacdError(f"{name}: training stopped before iteration {total}")
        return True

    def _evaljob(self, name: str, model: str, out_json: Path, keep_sr: Path | None) -> dict:
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
        self._run_job(name, job)
        return json.loads(out_json.read_text())

    @property
    def teacher_sr(self) -> Path:
        return self.out / "teacher-sr"

    # ---------------------------------------------------------------- tasks

    def task_teacher_train(self) -> bool:
        weights = Path(self.p.teacher.weights)
        if weights.is_file():
            return False
        self.log(f"teacher weights {weights} absent: training them with {self.p.teacher.config}")
        cfg = self.p.teacher_train_config()
        run_dir = self.out / "teacher"
        self._train("teacher", cfg, run_dir)
        copy_file(run_dir / "last.safetensors", weights)
        return True

    def task_teacher_eval(self) -> bool:
        weights = Path(self.p.teacher.weights)
        sha = sha256_file(weights)
        result = self.results / "teacher.json"
        key = fingerprint({"sha": sha, "eval": self.p.eval.sets, "v": RESULT_VERSION})
        if (
            _read_json(result).get("fingerprint") == key
            and (self.teacher_sr / DONE_MARKER).is_file()
        ):
            return False
        doc = self._evaljob(
            "eval-teacher", str(weights), self.out / "teacher-eval.json", self.teacher_sr
        )
        doc.update(
            kind="teacher",
            label=self.p.teacher.label,
            weights=str(weights),
            weights_sha256=sha,
            train_config=self.p.teacher.config,
            fingerprint=key,
        )
        _write_json(result, doc)
        return True

    def task_bicubic(self) -> bool:
        result = self.results / "bicubic.json"
        key = fingerprint(
            {"eval": self.p.eval.sets, "teacher": sha256_file(Path(self.p.teacher.weights))}
        )
        if _read_json(result).get("fingerprint") == key:
            return False
        doc = self._evaljob("eval-bicubic", "bicubic", self.out / "bicubic-eval.json", None)
        doc.update(kind="bicubic", fingerprint=key)
        _write_json(result, doc)
        return True

    def task_stage(self, stage: str) -> bool:
        """Train a teacher stage (e.g. PISR's E(Y) teacher) and publish its weights."""
        cfg = self.p.stage_config(stage)
        run_dir = self.out / stage
        published = self.results / f"{stage}.json"
        trained = self._train(stage, cfg, run_dir)
        if not trained and published.is_file():
            return False
        self.results.mkdir(parents=True, exist_ok=True)
        copy_file(run_dir / "last.safetensors", self.results / f"{stage}.safetensors")
        for name, target in _stage_extras(stage):
            if (run_dir / name).is_file():
                copy_file(run_dir / name, self.results / target)
        timing = _read_json(run_dir / "repro_timing.json")
        _write_json(
            published,
            {
                "kind": stage,
                "config": yaml.safe_load((run_dir / "config.yaml").read_text()),
                "train_s": timing.get("train_s"),
                "weights_sha256": sha256_file(run_dir / "last.safetensors"),
                "loss_curve": _loss_curve(read_jsonl(run_dir / "metrics.jsonl")),
            },
        )
        return True

    def is_cached(self, row: Row, seed: int) -> bool:
        """Whether the published result of a run stands: its fingerprint, its weights' hash
        and its own consistency (:mod:`facd.reproduce.checks`). A damaged or edited result is
        named in the log and made again."""
        rid = row.run_id(seed)
        path = self.results / f"{rid}.json"
        doc, damage = read_result(path)
        weights = self.results / f"{rid}.safetensors"
        problems = [damage] if damage else run_problems(doc or {}, self.p.name, weights)
        if problems:
            self.log(f"{path} is damaged ({'; '.join(problems)}): made again")
            return False
        return (
            doc is not None
            and doc.get("fingerprint") == self.row_fingerprint(row, seed)
            and weights.is_file()
            and doc.get("weights_sha256") == sha256_file(weights)
        )

    def task_train(self, row: Row, seed: int) -> bool:
        rid = row.run_id(seed)
        if self.is_cached(row, seed):
            return False
        cfg = self.row_config(row, seed)
        if row.weight_source:
            self._set_aside_other_weight(row, seed, cfg)
        self._train(rid, cfg, self.out / rid)
        return True

    def _set_aside_other_weight(self, row: Row, seed: int, cfg: dict) -> None:
        """A row at a chosen weight whose run folder holds a run of another config (its sweep
        chose another weight since): the folder moves to ``OUT/superseded/<run id>-<n>`` so that
        the run starts again at the chosen weight (training cannot resume across weights)."""
        run_dir = self.out / row.run_id(seed)
        saved = _read_yaml(run_dir / "config.yaml")
        if saved is None or not config_differences(saved, load_config_dict(cfg)):
            return
        n = 1
        while (dest := self.out / "superseded" / f"{run_dir.name}-{n}").exists():
            n += 1
        dest.parent.mkdir(parents=True, exist_ok=True)
        move(run_dir, dest)
        self.log(f"{run_dir.name}: its run folder holds another config; moved to {dest}")

    # ---------------------------------------------------------------- weight sweeps

    def sweep_fingerprint(self, row: Row, weight: float) -> str:
        """What a sweep run's score depends on: the run's fingerprint at ``weight`` (its
        resolved config, teacher bytes) and the validation split's list."""
        split = self.p.val_split
        assert split is not None  # checked when the protocol was loaded
        path = Path(split)
        key: dict[str, object] = {
            "run": self.row_fingerprint(row, self.p.sweep_seed, weight),
            "split": sha256_file(path) if path.is_file() else split,
            "kind": "sweep",
        }
        if self.p.sweep.schedule != 1.0:  # the default leaves published fingerprints as they are
            key["schedule"] = self.p.sweep.schedule
        return fingerprint(key)

    def sweep_config(self, row: Row, weight: float) -> dict:
        """The config of a sweep run: the row's at ``weight`` on the sweep seed, its schedule
        scaled by ``sweep.schedule``."""
        cfg = self.row_config(row, self.p.sweep_seed, weight)
        factor = self.p.sweep.schedule
        return cfg if factor == 1.0 else scaled_schedule(cfg, factor)

    def task_sweep_run(self, row: Row, weight: float) -> bool:
        """Train one weight of ``row``'s sweep (on the protocol's sweep seed) and measure it on the validation
        split; publish ``<row>-w<weight>-s<seed>.json``. Cached by its fingerprint alone, so a
        later sitting without the run folders keeps the score."""
        seed = self.p.sweep_seed
        rid = sweep_run_id(row.name, weight, seed)
        result = self.results / f"{rid}.json"
        key = self.sweep_fingerprint(row, weight)
        if _read_json(result).get("fingerprint") == key:
            return False
        run_dir = self.out / rid
        cfg = self.sweep_config(row, weight)
        self._train(rid, cfg, run_dir)
        resolved = load_config_dict(cfg)
        weights = run_dir / "last.safetensors"
        job = {
            "kind": "split",
            "models": [str(weights)],
            "split": self.p.val_split,
            "train_dirs": list(resolved["data"]["train_dirs"]),
            "scale": self.p.scale,
            "out": str(run_dir / "split-eval.json"),
        }
        self._run_job(f"split-{rid}", job)
        ev = json.loads((run_dir / "split-eval.json").read_text())
        records = read_jsonl(run_dir / "metrics.jsonl")
        timing = _read_json(run_dir / "repro_timing.json")
        section, option = weight_key(row).split(".")[1:]
        _write_json(
            result,
            {
                "kind": "sweep-run",
                "run_id": rid,
                "row": row.name,
                "method": row.method,
                "seed": seed,
                "weight": weight,
                "weight_key": weight_key(row),
                "resolved_weight": resolved["loss"][section][option],
                "split": ev["split"],
                "images": ev["images"],
                "psnr_y": ev["models"][str(weights)]["psnr_y"],
                "ssim_y": ev["models"][str(weights)].get("ssim_y"),
                "iterations": finished_iteration(run_dir),
                "weights_sha256": sha256_file(weights),
                "curve": val_curve(records),
                "final_terms": final_terms(records),
                "train_s": timing.get("train_s"),
                "eval_s": ev["eval_s"],
                "fingerprint": key,
            },
        )
        return True

    def task_sweep(self, row: Row) -> bool:
        """Choose ``row``'s weight (:data:`~facd.reproduce.protocol.SWEEP_RULE`): score every
        weight tried, extend the grid by one value while the best sits at an end (at most
        ``sweep.max_extensions`` times; the extensions train here, one after the other), and
        publish ``sweep-<row>.json``. Always rewritten from the cached sweep runs (cheap)."""
        declared = sorted(row.weight_grid)
        tried = list(declared)
        cap = self.p.sweep.max_extensions
        extended: list[float] = []
        while True:
            for w in tried:
                self.task_sweep_run(row, w)  # cached unless new or stale
            docs = {w: _read_json(self.results / self._sweep_json(row, w)) for w in tried}
            scores = {w: float(d["psnr_y"]) for w, d in docs.items()}
            best = choose_weight(scores)
            nxt = next_weight(declared, tried, best)
            if nxt is None or len(extended) >= cap:
                break
            self.log(
                f"sweep {row.name}: best weight {format_weight(best)} is at an end of "
                f"{[format_weight(w) for w in sorted(tried)]}; trying {format_weight(nxt)}"
            )
            extended.append(nxt)
            tried = sorted(tried + [nxt])
        tried = sorted(tried)
        doc = {
            "kind": "weight-sweep",
            "row": row.name,
            "method": row.method,
            "weight_key": weight_key(row),
            "seed": self.p.sweep_seed,
            "declared": declared,
            "extensions": extended,
            "max_extensions": cap,
            "at_edge": best in (tried[0], tried[-1]),
            "edge_unresolved": next_weight(declared, tried, best) is not None,
            "split": docs[best].get("split"),
            "images": docs[best].get("images"),
            "runs": [
                {
                    "weight": w,
                    "run_id": docs[w].get("run_id"),
                    "psnr_y": scores[w],
                    "extension": w in extended,
                }
                for w in tried
            ],
            "chosen": best,
            "inherited_by": [r.name for r in self.p.rows if r.weight_from == row.name],
        }
        path = self.results / f"sweep-{row.name}.json"
        changed = _read_json(path) != json.loads(json.dumps(doc))
        if changed:
            _write_json(path, doc)
            self.log(f"sweep {row.name}: chose {format_weight(best)} ({doc['split']} split)")
        return changed

    def _sweep_json(self, row: Row, weight: float) -> str:
        return f"{sweep_run_id(row.name, weight, self.p.sweep_seed)}.json"

    def sweep_sources(self) -> list[Row]:
        """The swept rows whose choice a selected run needs (in protocol order)."""
        needed = {r.weight_source for r, _ in self.selected_runs() if r.weight_source}
        return [r for r in self.p.rows if r.name in needed]

    def task_eval(self, row: Row, seed: int) -> bool:
        rid = row.run_id(seed)
        if self.is_cached(row, seed):
            return False
        run_dir = self.out / rid
        weights = self.results / f"{rid}.safetensors"
        self.results.mkdir(parents=True, exist_ok=True)
        copy_file(run_dir / "last.safetensors", weights)
        ev = self._evaljob(f"eval-{rid}", str(weights), run_dir / "eval.json", None)
        records = read_jsonl(run_dir / "metrics.jsonl")
        speeds = sorted(r["it_per_s"] for r in records if "it_per_s" in r)
        timing = _read_json(run_dir / "repro_timing.json")
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
            "loss_curve": _loss_curve(records),
            "final_terms": final_terms(records),
            "timing": {
                "train_s": timing.get("train_s"),
                "eval_s": ev["eval_s"],
                "teacher_psnr_s": ev["teacher_psnr_s"],
                "median_it_per_s": speeds[len(speeds) // 2] if speeds else None,
            },
            "config": yaml.safe_load((run_dir / "config.yaml").read_text()),
            "fingerprint": self.row_fingerprint(row, seed),
        }
        _write_json(self.results / f"{rid}.json", doc)
        return True

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
                    _bind_cfg(self.row_config, row, seed),
                    self.out / rid / "last.safetensors",
                    [f"train:{rid}"],
                    self.train_deps(row),
                )
            )
        return out

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

    def saturation_run_dir(self, name: str) -> Path:
        return self.out / "saturation" / f"{name}-x{self.p.saturation.factor}"

    def task_saturation_run(self, name: str, cfg: dict) -> bool:
        """Train the long run of a saturation check (``factor`` times the schedule). It does not
        need the network it is compared with, so it starts early: a failed check changes the
        schedule of everything else."""
        long_cfg = scaled_schedule(cfg, self.p.saturation.factor)
        return self._train(f"saturation-{name}", long_cfg, self.saturation_run_dir(name))

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
        self._run_job(f"split-{name}", job)
        return json.loads(out.read_text())

    def task_saturation(self, name: str, cfg: dict, weights: Path) -> bool:
        """Measure ``weights`` and the long run of ``cfg`` (trained by
        :meth:`task_saturation_run`, schedule ``factor`` times as long) on the validation split;
        publish ``saturation-<name>.json`` with the gain and the verdict against
        ``threshold_db``."""
        from facd.train.config import load_config, portable_paths

        sat = self.p.saturation
        if not weights.is_file():  # a row published earlier whose run folder is gone
            weights = self.results / f"{name}.safetensors"
        long_cfg = scaled_schedule(cfg, sat.factor)
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
        if _read_json(result).get("fingerprint") == key:
            return False
        run_dir = self.saturation_run_dir(name)
        long_weights = run_dir / "last.safetensors"
        dirs = list(resolved["data"]["train_dirs"])  # the network's own training folders
        ev = self.split_eval(
            name, [str(weights), str(long_weights)], dirs, run_dir / "split-eval.json"
        )
        base, long = ev["models"][str(weights)], ev["models"][str(long_weights)]
        gain = long["psnr_y"] - base["psnr_y"]
        timing = _read_json(run_dir / "repro_timing.json")
        _write_json(
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
        if _read_json(result).get("fingerprint") == key:
            return False
        run_dir = self.out / rid
        if not (run_dir / "checkpoints").is_dir():
            self.log(f"gradshare-{rid}: no run folder with its training state; not measured")
            return False
        from facd.reproduce.gradshare import run_gradient_shares

        doc = run_gradient_shares(run_dir, seed=0)
        doc.pop("run_dir", None)
        doc.update(kind="gradshare", run_id=rid, fingerprint=key)
        _write_json(result, doc)
        return True

    def task_alpha(self, row: Row, seed: int) -> bool:
        """alpha = 0 fraction of a run measured after training on ``report.regime.alpha_patch``
        pixel patches (:mod:`facd.reproduce.alphapatch`); ``alpha<P>-<run id>.json``."""
        reg = self.p.report.regime
        rid = row.run_id(seed)
        weights = self.results / f"{rid}.safetensors"
        teacher = Path(self.teacher_weights_for(row))
        data = load_config_dict(self.row_config(row, seed))["data"]
        key = fingerprint(
            {
                "s": sha256_file(weights),
                "t": sha256_file(teacher),
                "p": reg.alpha_patch,
                "n": reg.alpha_samples,
            }
        )
        result = self.results / f"alpha{reg.alpha_patch}-{rid}.json"
        if _read_json(result).get("fingerprint") == key:
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
        self._run_job(f"alpha-{rid}", job)
        doc = json.loads(out.read_text())
        doc.update(kind="alpha", run_id=rid, fingerprint=key)
        _write_json(result, doc)
        return True

    # ---------------------------------------------------------------- run

    def build_tasks(self) -> list[Task]:
        runs = self.selected_runs()
        tasks = [
            Task("teacher", self.task_teacher_train),
            Task("eval:teacher", self.task_teacher_eval, ["teacher"]),
        ]
        if not self.only:
            tasks.append(Task("eval:bicubic", self.task_bicubic, ["eval:teacher"]))
        for stage in dict.fromkeys(s for r, _ in runs if (s := teacher_stage(r.method))):
            tasks.append(Task(stage, _bind_stage(self.task_stage, stage)))
        trains, evals, sweeps = [], [], []
        # Weight sweeps first: the rows that run at a chosen weight wait for the choice.
        for row in self.sweep_sources():
            dep = self.teacher_deps(row)
            keys = []
            for w in sorted(row.weight_grid):
                key = f"sweep:{sweep_run_id(row.name, w, self.p.sweep_seed)}"
                sweeps.append(Task(key, _bind_weight(self.task_sweep_run, row, w), dep))
                keys.append(key)
            evals.append(Task(f"sweep:{row.name}", _bind_row(self.task_sweep, row), keys))
        trains.extend(sweeps)
        # Seed 0 of every row first (then seed 1, ...): a short run still covers every method.
        runs = sorted(runs, key=lambda rs: rs[0].seeds.index(rs[1]))
        for row, seed in runs:
            rid = row.run_id(seed)
            trains.append(
                Task(f"train:{rid}", _bind(self.task_train, row, seed), self.train_deps(row))
            )
            evals.append(
                Task(
                    f"eval:{rid}",
                    _bind(self.task_eval, row, seed),
                    [f"train:{rid}", "eval:teacher"],
                )
            )
        for row, seed in runs:  # how much each term can act: seed 0 of every row
            if seed == row.seeds[0]:
                rid = row.run_id(seed)
                evals.append(
                    Task(f"gradshare:{rid}", _bind(self.task_gradshare, row, seed), [f"eval:{rid}"])
                )
        reg = self.p.report.regime
        if reg.alpha0_row and reg.alpha_patch:
            for row, seed in runs:
                if row.name == reg.alpha0_row:
                    rid = row.run_id(seed)
                    evals.append(
                        Task(f"alpha:{rid}", _bind(self.task_alpha, row, seed), [f"eval:{rid}"])
                    )
        # Saturation checks: the verdict decides whether every other run's schedule stands, so
        # their long runs start first, the rows' (short) before the teacher's, each row's
        # reference run right after its long run; the comparison waits for both networks.
        targets = self.saturation_targets()
        long_runs = [
            Task(
                f"satrun:{t.name}",
                _bind_sat_run(self.task_saturation_run, t.name, t.config),
                t.run_deps,
            )
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
                _bind_sat(self.task_saturation, t.name, t.config, t.weights),
                [*t.ref_deps, f"satrun:{t.name}"],
            )
            for t in targets
        ]
        # Evaluations go first once ready, so results appear while training goes on.
        return tasks[:2] + evals + sats + tasks[2:] + trains

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
        old = _read_json(path)
        invocations = old.get("invocations", []) if old.get("name") == self.p.name else []
        if self.subprocesses or outcome.failed:  # a fully cached re-run is not recorded
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
        _write_json(path, doc)


def _die_with_parent() -> Callable[[], None] | None:
    if os.name != "posix":
        return None
    from facd.train.rundir import die_with_parent

    return die_with_parent


def _bind(fn: Callable[[Row, int], bool], row: Row, seed: int) -> Callable[[], bool]:
    return lambda: fn(row, seed)


def load_config_dict(cfg: dict) -> dict:
    """A row's config resolved (defaults filled in), as a dict."""
    from facd.train.config import load_config

    return load_config(None, [], base=cfg).to_dict()


def _bind_sat(
    fn: Callable[[str, dict, Path], bool], name: str, cfg: Callable[[], dict], weights: Path
) -> Callable[[], bool]:
    return lambda: fn(name, cfg(), weights)


def _bind_sat_run(
    fn: Callable[[str, dict], bool], name: str, cfg: Callable[[], dict]
) -> Callable[[], bool]:
    return lambda: fn(name, cfg())


def _bind_cfg(fn: Callable[[Row, int], dict], row: Row, seed: int) -> Callable[[], dict]:
    return lambda: fn(row, seed)


def _bind_row(fn: Callable[[Row], bool], row: Row) -> Callable[[], bool]:
    return lambda: fn(row)


def _bind_weight(fn: Callable[[Row, float], bool], row: Row, w: float) -> Callable[[], bool]:
    return lambda: fn(row, w)


def _bind_stage(fn: Callable[[str], bool], stage: str) -> Callable[[], bool]:
    return lambda: fn(stage)


def _stage_extras(stage: str) -> list[tuple[str, str]]:
    """(file in the run folder, published name) of the extra networks a stage saves beside its
    weights (the names :mod:`facd.train.rundir` knows, e.g. PISR's encoder ``pisr_encoder``,
    published as ``<stage>_encoder.safetensors``)."""
    from facd.distill.methods import term_outputs

    return [(n, f"{stage}_{n.split('_', 1)[-1]}") for n in term_outputs()]


def _loss_curve(records: list[dict]) -> list[list[float]]:
    return [[r["iteration"], r["loss"]] for r in records if "loss" in r and "iteration" in r]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _read_yaml(path: Path) -> dict | None:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def _write_json(path: Path, doc: dict) -> None:
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")


def _add_time(path: Path, key: str, seconds: float) -> None:
    doc = _read_json(path)
    doc[key] = round(float(doc.get(key, 0.0)) + seconds, 1)
    if path.parent.is_dir():
        _write_json(path, doc)
