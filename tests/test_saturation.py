"""The saturation check of a reproduction protocol: a network trained with its schedule and with
the schedule doubled, both measured on the validation split, the gain judged against 0.02 dB."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from facd.cli import main
from facd.errors import ConfigError
from facd.reproduce.protocol import load_protocol, scaled_schedule

from .helpers import split_protocol, write_protocol


def test_scaled_schedule_scales_iterations_and_milestones_only() -> None:
    cfg = {"method": "scratch", "train": {"iterations": 30, "lr_milestones": [2, 5]}}
    out = scaled_schedule(cfg, 2)
    assert out["train"] == {"iterations": 60, "lr_milestones": [4, 10]}
    assert cfg["train"]["iterations"] == 30  # the input is left alone
    # defaults are filled in from the config's schema
    assert scaled_schedule({"method": "scratch"}, 2)["train"] == {
        "iterations": 1_200_000,
        "lr_milestones": [300, 600, 900],
    }


def _protocol(tmp: Path, saturation: dict | None, split: bool = True, regime: bool = False) -> Path:
    rows = [{"method": "scratch", "seeds": [0]}]
    doc = split_protocol(tmp, "ci-sat", rows, val_every=2, split=split, teacher_schedule=True)
    if saturation is not None:
        doc["saturation"] = saturation
    if regime:
        doc["rows"].append({"method": "facd", "seeds": [0]})
        doc["report"] = {
            "path": doc["report"],
            "regime": {
                "gap_row": "scratch",
                "gap_paper_text": "0.32 dB",
                "gap_max_db": 0.5,
                "alpha0_row": "facd",
                "alpha0_min": 0.02,
                "alpha_patch": 12,
                "alpha_samples": 8,
            },
        }
    return write_protocol(tmp, doc)


def test_saturation_needs_the_validation_split_and_known_rows(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="shared.val.split"):
        load_protocol(_protocol(tmp_path, {"rows": ["scratch"]}, split=False))
    with pytest.raises(ConfigError, match="'saturation.rows' names 'facd'"):
        load_protocol(_protocol(tmp_path, {"rows": ["facd"]}))


@pytest.mark.slow
def test_saturation_check_end_to_end(tmp_path: Path) -> None:
    proto = _protocol(tmp_path, {"teacher": True, "rows": ["scratch"]}, regime=True)
    out = tmp_path / "runs"
    assert main(["reproduce", str(proto), "--out", str(out), "--no-figures"]) == 0
    results = tmp_path / "results"
    row = json.loads((results / "scratch-s0.json").read_text())
    sat = json.loads((results / "saturation-scratch-s0.json").read_text())
    assert sat["iterations"] == [3, 6] and sat["factor"] == 2 and sat["split"] == "split"
    assert sat["images"] == 2
    base, long = sat["psnr_y"]
    assert abs(sat["gain_db"] - (long - base)) < 1e-12
    assert sat["saturated"] == (sat["gain_db"] < 0.02)
    # the reference value is the row's own last validation on the split (same weights)
    assert abs(row["curve"][-1][1] - base) < 1e-9
    # the doubled run: 6 iterations, milestones doubled, validation on the split
    long_cfg = yaml.safe_load((out / "saturation" / "scratch-s0-x2" / "config.yaml").read_text())
    assert long_cfg["train"]["iterations"] == 6 and long_cfg["train"]["lr_milestones"] == [4]
    assert abs(sat["curve"][-1][1] - long) < 1e-9
    teacher = json.loads((results / "saturation-teacher.json").read_text())
    assert teacher["iterations"] == [2, 4]

    report = (tmp_path / "docs" / "results.md").read_text()
    assert "## Saturation: are the networks trained?" in report
    assert "gains less than 0.02 dB on the validation split" in report
    assert "| Teacher" in report or "| teacher" in report
    assert "(scratch-s0) | 3 → 6 |" in report

    # the regime conditions: the gap, the logged alpha = 0 fraction, alpha on 12-pixel patches
    alpha = json.loads((results / "alpha12-facd-s0.json").read_text())
    assert alpha["samples"] == 8 and alpha["patch_size"] == 12 and alpha["kind"] == "alpha"
    assert "## Regime: are the paper's mechanisms active?" in report
    assert "| teacher − Student (scratch) gap, mean of the one set |" in report
    assert "12-pixel LR patches of the training images | " in report

    # cached: a second invocation trains nothing and leaves the check's JSON alone
    before = (results / "saturation-scratch-s0.json").stat().st_mtime_ns
    logs = sorted((out / "logs").glob("*.log"))
    sizes = [p.stat().st_size for p in logs]
    assert main(["reproduce", str(proto), "--out", str(out), "--no-figures"]) == 0
    assert (results / "saturation-scratch-s0.json").stat().st_mtime_ns == before
    assert [p.stat().st_size for p in logs] == sizes


def test_saturation_long_runs_start_first_and_scratch_waits_for_no_teacher(tmp_path: Path) -> None:
    """The task graph: a failed saturation check changes every other run's schedule, so the long
    runs come first (the rows' before the teacher's, each row's reference run after its long
    run); a scratch row never waits for the teacher; distillation rows and sweeps do."""
    from facd.reproduce.runner import Reproduction

    proto = _protocol(tmp_path, {"teacher": True, "rows": ["scratch"]}, regime=True)
    doc = yaml.safe_load(proto.read_text())
    doc["rows"][1]["weight_grid"] = [1, 4]
    proto.write_text(yaml.safe_dump(doc))
    tasks = Reproduction(load_protocol(proto), tmp_path / "runs").build_tasks()
    deps = {t.key: t.deps for t in tasks}
    order = [t.key for t in tasks if t.key.startswith(("satrun:", "train:", "sweep:facd-"))]
    assert order[:3] == ["satrun:scratch-s0", "train:scratch-s0", "satrun:teacher"]
    assert deps["satrun:scratch-s0"] == [] and deps["train:scratch-s0"] == []
    assert deps["satrun:teacher"] == []
    assert deps["train:facd-s0"] == ["teacher", "sweep:facd"]
    sweep_runs = [k for k in deps if k.startswith("sweep:facd-w")]
    assert len(sweep_runs) == 2 and all(deps[k] == ["teacher"] for k in sweep_runs)
    assert deps["saturation:scratch-s0"] == ["train:scratch-s0", "satrun:scratch-s0"]
    assert deps["saturation:teacher"] == ["teacher", "satrun:teacher"]
    # the comparison re-uses the long run: its folder is the one satrun trains into
    run = Reproduction(load_protocol(proto), tmp_path / "runs")
    assert run.saturation.run_dir("teacher") == tmp_path / "runs" / "saturation" / "teacher-x2"
