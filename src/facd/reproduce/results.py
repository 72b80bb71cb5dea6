"""Read a protocol's published JSON back, and look numbers up by row, seed and set."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from facd.reproduce.checks import read_result, run_problems
from facd.reproduce.protocol import SPLIT, Protocol, Row, run_id, sweep_run_id
from facd.reproduce.stats import mean, paired, std

#: The pilot stages the report shows (``pilot-precision.json`` is for docs/performance.md).
PILOT_STAGES = ("lr", "budget")


def pilot_path(results_dir: str | Path, stage: str) -> Path:
    """Where ``tools/budget_pilot.py <stage>`` publishes its table (``pilot-<stage>.json``)."""
    return Path(results_dir) / f"pilot-{stage}.json"


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass
class Results:
    proto: Protocol
    runs: dict[str, dict] = field(default_factory=dict)  # run id -> result JSON
    teacher: dict | None = None
    teacher_split: dict | None = None  # the teacher on the validation split (regime gap_on: split)
    bicubic: dict | None = None
    stages: dict[str, dict] = field(default_factory=dict)  # teacher stage -> its JSON
    protocol_json: dict | None = None
    saturation: dict[str, dict] = field(default_factory=dict)  # network -> its check's JSON
    alpha_patch: dict[str, dict] = field(default_factory=dict)  # run id -> alpha<P> JSON
    sweeps: dict[str, dict] = field(default_factory=dict)  # swept row -> sweep-<row>.json
    sweep_runs: dict[str, dict] = field(default_factory=dict)  # sweep run id -> its JSON
    pilots: dict[str, dict] = field(default_factory=dict)  # pilot stage -> pilot-<stage>.json
    other_pilots: dict[str, dict | None] = field(default_factory=dict)  # study.other_pilots
    damaged: dict[str, str] = field(default_factory=dict)  # file name -> why it is left out

    @classmethod
    def load(cls, proto: Protocol) -> Results:
        root = Path(proto.results_dir)
        res = cls(proto)
        for rid in proto.run_ids():
            doc, damage = read_result(root / f"{rid}.json")
            if damage is not None:
                res.damaged[f"{rid}.json"] = damage
            elif doc is not None and doc.get("kind") == "student":
                problems = run_problems(doc, proto.name, root / f"{rid}.safetensors")
                if problems:
                    res.damaged[f"{rid}.json"] = "; ".join(problems)
                else:
                    res.runs[rid] = doc
        res.teacher = _read(root / "teacher.json")
        res.teacher_split = _read(root / "teacher-split.json")
        res.bicubic = _read(root / "bicubic.json")
        for stage in proto.stages():
            doc = _read(root / f"{stage}.json")
            if doc is not None:
                res.stages[stage] = doc
        res.protocol_json = _read(root / "protocol.json")
        for stage in PILOT_STAGES:
            doc = _read(pilot_path(root, stage))
            if doc is not None:
                res.pilots[stage] = doc
        res.other_pilots = {path: _read(Path(path)) for path in proto.study.other_pilots}
        for row in proto.rows:
            if not row.weight_grid or row.skip:
                continue
            doc = _read(root / f"sweep-{row.name}.json")
            if doc is not None and doc.get("kind") == "weight-sweep":
                res.sweeps[row.name] = doc
            weights = list(row.weight_grid) + list((doc or {}).get("extensions") or [])
            for w in weights:
                rid = sweep_run_id(row.name, w, proto.sweep_seed)
                run = _read(root / f"{rid}.json")
                if run is not None and run.get("kind") == "sweep-run":
                    res.sweep_runs[rid] = run
        sat = proto.saturation
        names = (["teacher"] if sat.teacher else []) + [
            run_id(n, proto.row(n).seeds[0]) for n in sat.rows
        ]
        reg = proto.report.regime
        if reg.alpha0_row and reg.alpha_patch:
            for rid in proto.row(reg.alpha0_row).run_ids():
                doc = _read(root / f"alpha{reg.alpha_patch}-{rid}.json")
                if doc is not None and doc.get("kind") == "alpha":
                    res.alpha_patch[rid] = doc
        for name in names:
            doc = _read(root / f"saturation-{name}.json")
            if doc is not None and doc.get("kind") == "saturation":
                res.saturation[name] = doc
        return res

    # ------------------------------------------------------------- look-ups

    def alpha_patch_samples(self) -> int:
        """Patches per run of the alpha measurement after training (0 if none)."""
        return max((d.get("samples", 0) for d in self.alpha_patch.values()), default=0)

    @property
    def sets(self) -> list[str]:
        return list(self.proto.eval.sets)

    def row_runs(self, row: Row) -> dict[int, dict]:
        out = {}
        for seed in row.seeds:
            doc = self.runs.get(row.run_id(seed))
            if doc is not None:
                out[seed] = doc
        return out

    def missing(self) -> list[str]:
        return [rid for rid in self.proto.run_ids() if rid not in self.runs]

    def has(self, name: str) -> bool:
        return any(r.name == name and self.row_runs(r) for r in self.proto.rows)

    def values(self, name: str, set_name: str | None, key: str = "psnr_y") -> dict[int, float]:
        """Seed -> value; ``set_name=None`` is the mean over the evaluation sets, ``SPLIT`` the
        run's Y-PSNR on the validation split at its last iteration (the last point of its
        validation curve, when it is at the run's last iteration).

        ``key`` is ``psnr_y``/``ssim_y`` (benchmark) or ``teacher_psnr``.
        """
        row = self.proto.row(name)
        out = {}
        for seed, doc in self.row_runs(row).items():
            if set_name == SPLIT:
                curve = doc.get("curve") or []
                if key == "psnr_y" and curve and curve[-1][0] == doc.get("iterations"):
                    out[seed] = float(curve[-1][1])
                continue
            sets = [set_name] if set_name else self.sets
            vals = [_metric(doc, s, key) for s in sets]
            if all(v is not None for v in vals):
                out[seed] = mean(vals)  # type: ignore[arg-type]
        return out

    def stat(
        self, name: str, set_name: str | None, key: str = "psnr_y"
    ) -> tuple[float, float | None, int] | None:
        vals = list(self.values(name, set_name, key).values())
        if not vals:
            return None
        return mean(vals), std(vals), len(vals)

    def diff(self, a: str, b: str, set_name: str | None, key: str = "psnr_y"):
        """``a - b`` paired by seed (:func:`facd.reproduce.stats.paired`)."""
        return paired(self.values(a, set_name, key), self.values(b, set_name, key))

    def single(self, doc: dict | None, set_name: str, key: str = "psnr_y") -> float | None:
        return _metric(doc, set_name, key) if doc else None


def _metric(doc: dict, set_name: str, key: str) -> float | None:
    if key == "teacher_psnr":
        tp = doc.get("teacher_psnr") or {}
        return (tp.get(set_name) or {}).get("psnr_y")
    return ((doc.get("sets") or {}).get(set_name) or {}).get(key)
