"""The report shows how an equal-budget study chose its learning rate and its budget B, from the
pilot's published JSON (``tools/budget_pilot.py``), and says so where the rows do not follow it."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from facd.reproduce.protocol import load_protocol

from .helpers import write_student_runs
from .test_claims import ALPHA0_HOLDS, CLAIMS, PSNR, _protocol_with, _report

STUDY = {"kind": "equal_budget", "doubling_gain_db": 0.25, "doubling_source": "the pilot"}

#: The lr pilot: 2e-3 is the best of the grid; the protocol's rows run at 1e-3.
PILOT_LR = {
    "seed": 100,
    "rows": [
        {"lr": 5e-4, "iterations": 6, "psnr_y": 27.2},
        {"lr": 1e-3, "iterations": 6, "psnr_y": 27.3},
        {"lr": 2e-3, "iterations": 6, "psnr_y": 27.5},
    ],
    "chosen_lr": 2e-3,
}


def _budget_pilot(budget: int, teacher: str | None = "t.safetensors") -> dict:
    """Conditions fail at 1.5 (gap 0.7 dB) and hold at 3 and 6 (gap <= 0.5, alpha >= 2 %)."""
    rows = [
        {
            "iterations": it,
            "psnr_y": s,
            "teacher_psnr_y": 28.0,
            "gap_db": 28.0 - s,
            "alpha0_frac": a,
        }
        for it, s, a in ((1, 27.3, 0.04), (3, 27.7, 0.13), (6, 27.9, 0.48))
    ]
    for r in rows:
        r["conditions_hold"] = r["gap_db"] <= 0.5 and r["alpha0_frac"] >= 0.02
    doc = {"seed": 100, "lr": 1e-3, "alpha0_min": 0.02, "gap_max_db": 0.5, "rows": rows}
    doc.update(budget=budget, conditions_hold=True, doubling_gain_db=0.2)
    if teacher:
        doc["teacher"] = teacher
    return doc


def _study_report(tmp: Path, study: dict, budget: int = 3, name: str = "p") -> tuple[Path, str]:
    path = _protocol_with(tmp, {"reference": "scratch", "claims": CLAIMS}, name=name)
    doc = yaml.safe_load(path.read_text())
    doc["study"] = study
    path.write_text(yaml.safe_dump(doc))
    results = tmp / name / "results"
    write_student_runs(results, PSNR, {"facd": ALPHA0_HOLDS})
    (results / "pilot-lr.json").write_text(json.dumps(PILOT_LR))
    (results / "pilot-budget.json").write_text(json.dumps(_budget_pilot(budget)))
    return path, _report(path)


def _section(text: str, start: str) -> str:
    part = text[text.index(start) :]
    return part[: part.index("\n## ", 3)]


def test_the_pilot_tables_show_the_choice_and_the_reason_it_was_not_followed(
    tmp_path: Path,
) -> None:
    note = "2e-3 diverged in longer runs."
    _, text = _study_report(tmp_path, {**STUDY, "lr_note": note})
    pilot = _section(text, "## Pilot: the learning rate and the budget B")
    assert "| 0.001 | 27.300 | **every row** |" in pilot
    assert "| 0.002 | 27.500 | best of the grid |" in pilot
    assert f"Every row runs at lr 0.001, not the pilot's best 0.002: {note}" in pilot
    assert "| 1 | 27.300 | 28.000 | 0.700 | 4.0 % | fail |" in pilot
    assert "| 3 | 27.700 | 28.000 | 0.300 | 13.0 % | hold |" in pilot
    assert "B = 3: the smallest schedule at which both conditions hold." in pilot
    assert "Doubling B gains +0.200 dB on the split" in pilot
    assert "The rows run" not in pilot  # they run B
    assert "Teacher: `t.safetensors`" in pilot


def test_a_pilot_not_followed_without_a_reason_is_said_so(tmp_path: Path) -> None:
    _, text = _study_report(tmp_path, STUDY, budget=6)
    pilot = _section(text, "## Pilot")
    assert "not the pilot's best 0.002, and the protocol gives no reason (`study.lr_note`)" in pilot
    assert "B = 6: the smallest schedule" in pilot
    assert "The rows run 3 iterations, not the pilot's B." in pilot


def test_other_pilots_are_records_beside_the_study_s_own(tmp_path: Path) -> None:
    record = tmp_path / "older" / "pilot-budget.json"
    record.parent.mkdir()
    record.write_text(json.dumps(_budget_pilot(6, teacher=None)))
    missing = tmp_path / "gone" / "pilot-budget.json"
    _, text = _study_report(tmp_path, {**STUDY, "other_pilots": [str(record), str(missing)]})
    pilot = _section(text, "## Pilot")
    other = pilot[pilot.index("### Budget B against another teacher (a record; not used)") :]
    assert f"`{record}`. Teacher: not named in the file" in other
    assert "| 6 | 27.900 | 28.000 | 0.100 | 48.0 % | hold |" in other
    assert "B = 6" not in other  # a record decides nothing
    assert f"`{missing}` (a budget pilot the protocol lists): missing or unreadable." in pilot


def test_no_pilot_no_section_and_an_including_report_shows_it_one_level_down(
    tmp_path: Path,
) -> None:
    path, _ = _study_report(tmp_path, STUDY)
    plain = _protocol_with(tmp_path, {"reference": "scratch", "claims": CLAIMS}, name="plain")
    write_student_runs(tmp_path / "plain" / "results", PSNR)
    assert "Pilot" not in _report(plain)
    main = _protocol_with(tmp_path, {"include": [str(path)]}, name="main")
    text = _report(main)
    part = text[text.index(f"## From the `{path}` protocol") :]
    assert "\n### Pilot: the learning rate and the budget B\n" in part
    assert "\n#### Learning rate (6 iterations)\n" in part
    assert "\n#### Budget B against the study's teacher\n" in part

    # the study's lambda figure, as its own report drew it, linked from the including report
    figures = Path(load_protocol(path).figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    (figures / "lambda.png").write_bytes(b"png")
    part = _report(main).split(f"## From the `{path}` protocol")[1]
    assert "\n### The lambda and budget curves\n" in part and "lambda.png)" in part
