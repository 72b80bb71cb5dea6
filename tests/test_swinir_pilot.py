"""The SwinIR pilot protocol (``configs/repro/swinir-pilot.yaml``): it loads, it keeps its
outputs apart from the fast protocol's, it never trains on the validation split, and its
published results still match their rows. Reads files only; no training, no evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facd.fileio import sha256_file
from facd.reproduce.protocol import VAL_SPLIT, load_protocol
from facd.reproduce.runner import Reproduction

REPO = Path(__file__).resolve().parents[1]
PILOT = "configs/repro/swinir-pilot.yaml"
ROWS = ["scratch", "ts", "fakd", "fcd", "facd"]


@pytest.fixture
def pilot(monkeypatch):
    monkeypatch.chdir(REPO)
    proto = load_protocol(PILOT)
    return proto, Reproduction(proto, Path("runs/repro-swinir-pilot"), log=lambda m: None)


def test_pilot_protocol_loads_with_its_rows_and_a_swinir_pair(pilot) -> None:
    proto, rep = pilot
    assert [r.name for r in proto.rows] == ROWS
    assert all(r.seeds == [0, 1, 2] and r.group == "main" for r in proto.rows)
    assert proto.student == {"preset": "swinir-tiny-s"}
    assert proto.teacher_net()["preset"] == "swinir-tiny-t"
    sizes = rep.check_sizes()  # the parameter-ratio guard passes
    assert sizes["ratio"] >= proto.min_param_ratio
    assert "PILOT" in proto.description
    claimed = {n for c in proto.report.claims for n in c.rows}
    assert claimed <= set(ROWS)


def test_pilot_outputs_do_not_overwrite_the_fast_protocols(pilot) -> None:
    proto, _ = pilot
    mini = load_protocol("configs/repro/mini-x4.yaml")
    assert proto.results_dir != mini.results_dir
    assert proto.report.path != mini.report.path
    assert proto.figures_dir != mini.figures_dir
    assert Path(proto.teacher.weights).parent == Path(proto.results_dir)


def test_pilot_never_trains_on_the_validation_split(pilot) -> None:
    proto, _ = pilot
    assert proto.shared["data"]["exclude"] == VAL_SPLIT
    teacher = proto.teacher_train_config()  # paths seen from the repository root
    assert Path(teacher["data"]["exclude"]).resolve() == (REPO / VAL_SPLIT).resolve()


def test_pilot_published_results_are_current(pilot) -> None:
    """Every published student result matches its row's fingerprint and its weights' hash, and
    seed 0 of every row has its weights committed."""
    proto, rep = pilot
    results = Path(proto.results_dir)
    if not (results / "teacher.json").is_file():
        pytest.skip("the pilot has not been run yet")
    teacher = json.loads((results / "teacher.json").read_text())
    assert teacher["weights_sha256"] == sha256_file(Path(proto.teacher.weights))
    checked = 0
    for row in proto.rows:
        for seed in row.seeds:
            doc_path = results / f"{row.name}-s{seed}.json"
            if not doc_path.is_file():
                continue
            doc = json.loads(doc_path.read_text())
            assert doc["fingerprint"] == rep.configs.row_fingerprint(row, seed), doc_path.name
            assert rep.configs.is_cached(row, seed), doc_path.name
            checked += 1
        assert (results / f"{row.name}-s0.safetensors").is_file()
    assert checked == 15


def test_main_report_includes_the_pilot_table(monkeypatch) -> None:
    """docs/results.md shows the pilot's main table, generated from the pilot's own results."""
    from facd.reproduce.protocol import load_protocol
    from facd.reproduce.report import included_tables
    from facd.reproduce.reportdoc import Report
    from facd.reproduce.results import Results

    monkeypatch.chdir(REPO)
    main = load_protocol("configs/repro/mini-x4.yaml")
    assert "configs/repro/swinir-pilot.yaml" in main.report.include
    rep = Report(Results.load(main), "test", "configs/repro/mini-x4.yaml")
    included_tables(rep, REPO / main.report.path)
    text = "\n".join(rep.lines)
    assert "## From the `configs/repro/swinir-pilot.yaml` protocol" in text
    assert "(results-swinir-pilot.md)" in text and "\n### PILOT" in text
    facd_rows = [ln for ln in text.splitlines() if ln.startswith("| FACD | 3 |")]
    assert facd_rows and "(n=3)" in facd_rows[0]  # its main table (then its Table 13 analogue)
    assert text in (REPO / "docs" / "results.md").read_text()  # the published report is current
