"""tools/budget_pilot.py, budget stage: the scratch row trained at each schedule, each measured
against the teacher (gap on the validation split, alpha = 0 fraction on patches), B the
smallest schedule where both conditions hold, and the gain of doubling B."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from .helpers import load_tool, make_checkpoint, split_protocol, write_protocol


def _protocol(tmp: Path, gap_max_db: float, alpha0_min: float = 0.0) -> Path:
    doc = split_protocol(tmp, "ci-pilot", [{"method": "scratch", "seeds": [0]}], val_every=3)
    doc["report"] = {
        "path": doc["report"],
        "regime": {
            "gap_row": "scratch",
            "gap_max_db": gap_max_db,
            "gap_on": "split",
            "alpha0_row": "scratch",
            "alpha0_min": alpha0_min,
            "alpha_patch": 8,
            "alpha_samples": 4,
        },
    }
    return write_protocol(tmp, doc)


@pytest.mark.slow
def test_b_is_the_smallest_schedule_that_holds_against_the_teacher_given(
    tmp_path: Path, capsys
) -> None:
    proto = _protocol(tmp_path, gap_max_db=100.0)  # holds at once: B is the smallest schedule
    other = make_checkpoint(tmp_path / "other-teacher.safetensors", seed=7)
    out = tmp_path / "runs"
    tool = load_tool("budget_pilot")
    argv = [str(proto), "budget", "--lr", "1e-3", "--factors", "2", "1", "--out", str(out)]
    assert tool.main(argv) == 0
    doc = json.loads((tmp_path / "results" / "pilot-budget.json").read_text())
    assert [r["iterations"] for r in doc["rows"]] == [3, 6]  # both measured, ascending
    assert doc["budget"] == 3 and doc["conditions_hold"]
    psnr = {r["iterations"]: r["psnr_y"] for r in doc["rows"]}
    assert doc["doubling_gain_db"] == pytest.approx(psnr[6] - psnr[3], abs=1e-12)
    for r in doc["rows"]:
        assert r["gap_db"] == pytest.approx(r["teacher_psnr_y"] - r["psnr_y"], abs=1e-12)
        assert 0.0 <= r["alpha0_frac"] <= 1.0
    assert "gain of doubling B" in capsys.readouterr().out
    # other teacher weights: measured against them, their split score cached apart
    assert tool.main([*argv, "--teacher", str(other)]) == 0
    again = json.loads((tmp_path / "results" / "pilot-budget.json").read_text())
    assert again["teacher"] == str(other)
    assert [r["psnr_y"] for r in again["rows"]] == [psnr[3], psnr[6]]  # the runs are reused
    assert again["rows"][0]["teacher_psnr_y"] != doc["rows"][0]["teacher_psnr_y"]
    cached = sorted(p.name for p in (out / "pilot").glob("teacher-split-*.json"))
    assert [n.rsplit("-", 1)[0] for n in cached] == [
        "teacher-split-other-teacher",
        "teacher-split-teacher",
    ]
    # no schedule holds: against the student's own weights as the teacher the gap is exactly 0
    # and alpha = 0 nowhere (the indicator is 1 on ties), so a 50 % alpha condition fails
    raw = yaml.safe_load(proto.read_text())
    raw["report"]["regime"]["alpha0_min"] = 0.5
    proto.write_text(yaml.safe_dump(raw))
    own = out / "pilot" / "lr0.001-x1" / "last.safetensors"
    one = [str(proto), "budget", "--lr", "1e-3", "--factors", "1", "--out", str(out)]
    assert tool.main([*one, "--teacher", str(own)]) == 0
    doc = json.loads((tmp_path / "results" / "pilot-budget.json").read_text())
    (row,) = doc["rows"]
    assert row["gap_db"] == 0.0 and row["alpha0_frac"] == 0.0 and not row["conditions_hold"]
    assert doc["budget"] == 3 and not doc["conditions_hold"]
    assert doc["doubling_gain_db"] is None  # 2 B was not run
