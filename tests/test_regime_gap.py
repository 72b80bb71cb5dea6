"""The regime's student-teacher gap measured on the validation split (``report.regime.gap_on:
split``): the teacher's split score published by the runner, each run's last validation on the
split, and the condition judged on their difference, as the budget pilot measures it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facd.cli import main
from facd.errors import ConfigError
from facd.reproduce.claims import ClaimJudge
from facd.reproduce.protocol import load_protocol
from facd.reproduce.results import Results

from .helpers import split_protocol, write_protocol


def _protocol(tmp: Path, gap_on: str, split: bool = True, gap_max_db: float = 0.5) -> Path:
    rows = [{"method": "scratch", "seeds": [0]}]
    doc = split_protocol(tmp, "ci-gap", rows, val_every=3, split=split)
    doc["report"] = {
        "path": doc["report"],
        "regime": {
            "gap_row": "scratch",
            "gap_max_db": gap_max_db,
            "gap_on": gap_on,
            "alpha_patch": 0,
        },
    }
    return write_protocol(tmp, doc)


def test_gap_on_the_split_needs_a_validation_split(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'report.regime.gap_on' is 'split', but"):
        load_protocol(_protocol(tmp_path / "a", "split", split=False))
    # a set the protocol does not evaluate leaves the gap unmeasured (the condition reads so)
    assert load_protocol(_protocol(tmp_path / "b", "Set5")).report.regime.gap_on == "Set5"
    assert load_protocol(_protocol(tmp_path / "c", "Tiny")).report.regime.gap_on == "Tiny"


@pytest.mark.slow
def test_the_gap_on_the_split_is_the_teacher_split_score_minus_the_last_validation(
    tmp_path: Path,
) -> None:
    path = _protocol(tmp_path, "split", gap_max_db=100.0)
    assert main(["reproduce", str(path), "--out", str(tmp_path / "runs"), "--no-figures"]) == 0
    results = tmp_path / "results"
    teacher = json.loads((results / "teacher.json").read_text())
    split = json.loads((results / "teacher-split.json").read_text())
    assert split["kind"] == "teacher-split" and split["weights_sha256"] == teacher["weights_sha256"]
    # the teacher's score on the split, measured again here by the split evaluation itself
    from facd.reproduce.evaljob import evaluate_split

    folders = [str(tmp_path / "data" / "A" / "HR")]
    again = evaluate_split([teacher["weights"]], tmp_path / "split.txt", folders, 4)
    assert abs(again["models"][teacher["weights"]]["psnr_y"] - split["psnr_y"]) < 1e-9
    row = json.loads((results / "scratch-s0.json").read_text())
    assert row["curve"][-1][0] == row["iterations"] == 3
    judge = ClaimJudge(Results.load(load_protocol(path)))
    (cond,) = judge.conditions()
    assert cond.where == "the validation split"
    assert abs(cond.value - (split["psnr_y"] - row["curve"][-1][1])) < 1e-12
    assert cond.holds  # within 100 dB
    report = (tmp_path / "docs" / "results.md").read_text()
    gap_row = (
        f"| teacher − Student (scratch) gap, the validation split | {cond.value:.2f} dB (n=1) |"
    )
    assert gap_row in report
    # a teacher-split score of other teacher weights is not used
    split["weights_sha256"] = "0" * 64
    (results / "teacher-split.json").write_text(json.dumps(split))
    judge = ClaimJudge(Results.load(load_protocol(path)))
    assert judge.conditions()[0].holds is None
    assert "gap not measured" in judge.regime_gate()
