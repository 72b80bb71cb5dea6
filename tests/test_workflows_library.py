"""Workflows call the library: reproduction jobs, the report's data, the quickstart's config.

* A reproduction job trains through :func:`facd.train.run` (the run folder's lock,
  resume rules), not through ``facd train`` flags.
* The report's tables, claims and observations are data of the protocol's ``report:`` section,
  validated when the protocol is loaded; labels come from the method declarations.
* No method name is written in the code of the workflows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from facd.errors import ConfigError
from facd.reproduce.protocol import load_protocol

from .helpers import write_student_runs
from .test_reproduce import _protocol

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------ report data


REPORT = {
    "path": "PLACEHOLDER",
    "reference": "scratch",
    "main_title": "My main table",
    "paper": "The paper says things.",
    "tables": [
        {
            "title": "My ablation",
            "about": "What it tests.",
            "rows": ["scratch", "gt-fcd", "facd"],
            "reference": "scratch",
            "columns": ["A", "B"],
            "marks": {"facd": ["B"]},
        }
    ],
    "claims": [
        {"text": "My claim", "rows": ["facd", "scratch"], "paper": "+1 dB", "per_set": True},
        {"text": "Never shown", "rows": ["facd", "ts"], "optional": True},
        {"text": "Not run", "rows": ["facd", "ts"]},
    ],
    "alpha0": {"row": "facd", "paper": 0.05, "paper_text": "paper: 5 %"},
    "observations": [
        {"text": "Gain of {label facd}: {diff facd scratch} dB ({verdict facd scratch})."},
        {"text": "Missing {diff fcd scratch}."},
        {"text": "Rare alpha {alpha0 facd} %.", "alpha0_below": 0.5},
    ],
}


def _fake_results(tmp: Path, proto_path: Path) -> None:
    """Published JSON of two seeds of scratch and facd, without training anything."""
    proto = load_protocol(proto_path)
    root = Path(proto.results_dir)
    alpha0 = {"facd": {"mean": 0.02, "last_quarter_mean": 0.03, "min": 0.0, "max": 0.04}}
    write_student_runs(root, {"scratch": [20.0, 20.1], "facd": [20.5, 20.7]}, alpha0)


def _with_report(tmp: Path, report: dict, rows: list[dict] | None = None) -> Path:
    rows = rows or [{"method": "scratch", "seeds": [0, 1]}, {"method": "facd", "seeds": [0, 1]}]
    path = _protocol(tmp, rows)
    doc = yaml.safe_load(path.read_text())
    doc["report"] = {**report, "path": doc["report"]}
    path.write_text(yaml.safe_dump(doc))
    return path


def test_report_section_brings_its_own_tables_claims_and_observations(tmp_path: Path) -> None:
    from facd.reproduce.report import write_report

    path = _with_report(tmp_path, REPORT)
    _fake_results(tmp_path, path)
    proto = load_protocol(path)
    text = write_report(proto, str(path), figures=False, log=lambda m: None).read_text()
    assert "## My main table" in text and "The paper says things." in text
    # labels come from the method declarations; check marks from the table's data
    assert "### My ablation" in text and "| Method | A | B | seeds |" in text
    assert "| Student (scratch) |  |  | 2 |" in text and "| FACD |  | x | 2 |" in text
    assert "L1 (GT) + FCD" not in text and "gt-fcd" not in text  # not run: not shown
    claim = "- My claim (paper: +1 dB): FACD − Student (scratch) on Tiny: +0.550 ± 0.071 dB"
    assert claim in text
    assert "- My claim (paper: +1 dB): FACD − Student (scratch) on mean of the one set:" in text
    assert "Never shown" not in text
    assert "- Not run: not measured (FACD or TS missing)." in text
    assert "- alpha = 0 fraction of FACD: 2.00 % of training patches on average (paper: 5 %)" in (
        text
    )
    assert "- Gain of FACD: +0.550 ± 0.071 dB (includes 0)." in text  # 2 seeds: t-interval
    assert "Missing" not in text  # a number it names is missing: left out
    assert "- Rare alpha 2.00 %." in text
    assert "| FACD (adaptive) | 2 |" in text  # from the declaration's loss options


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"claims": [{"text": "x", "rows": ["facd", "nope"]}]}, r"report.claims\[0\].rows.*'nope'"),
        ({"claims": [{"text": "x", "rows": ["facd"]}]}, r"rows: \[a, b\]"),
        ({"claims": [{"text": "x", "rows": ["facd", "scratch"], "metric": "ssim"}]}, "metric"),
        (
            {"tables": [{"title": "t", "rows": ["facd", "scratch"], "reference": "fcd"}]},
            r"reference.*must be one of its rows",
        ),
        (
            {
                "tables": [
                    {
                        "title": "t",
                        "rows": ["facd", "scratch"],
                        "reference": "facd",
                        "marks": {"facd": ["Z"]},
                    }
                ]
            },
            "not among its columns",
        ),
        ({"observations": [{"text": "{diff facd} dB"}]}, "wrong number of rows"),
        ({"reference": "fcd"}, "'report.reference' 'fcd' is not a row"),
        ({"alpha0": {"row": "typo"}}, r"report.alpha0.row"),
        (
            {"claims": [{"text": "x", "rows": ["facd", "fcd"]}]},
            r"report.claims\[0\]' \(x\) compares rows that differ only in the adaptive "
            "indicator alpha: set 'needs_regime: true'",
        ),
        (
            {"claims": [{"text": "x", "rows": ["facd", "fcd"], "needs_regime": True}]},
            r"report.claims\[0\].needs_regime': set a condition in 'report.regime'",
        ),
    ],
)
def test_report_section_is_validated_when_the_protocol_loads(tmp_path, change, match) -> None:
    path = _with_report(tmp_path, change)
    with pytest.raises(ConfigError, match=match):
        load_protocol(path)


def test_report_path_alone_is_still_read(tmp_path: Path) -> None:
    """Protocol files written before the report section give ``report: PATH``."""
    path = _protocol(tmp_path, [{"method": "scratch"}])
    proto = load_protocol(path)
    assert proto.report.path == str(tmp_path / "docs" / "results.md")
    assert proto.reference == "scratch" and proto.report.tables == []


def test_shipped_protocol_report_data() -> None:
    proto = load_protocol(REPO / "configs" / "repro" / "mini-x4.yaml")
    assert proto.reference == "scratch" and len(proto.report.tables) == 8
    assert len(proto.report.claims) == 18 and proto.report.alpha0.row == "facd"
    assert proto.label("pisr") == "PISR*" and proto.label("fcd-infonce") == (
        "FCD (InfoNCE, dot product)"
    )
    assert proto.stages() == ["pisr-teacher"]


def test_row_label_overrides_the_declaration(tmp_path: Path) -> None:
    path = _protocol(tmp_path, [{"method": "scratch", "label": "Baseline"}])
    assert load_protocol(path).label("scratch") == "Baseline"


# ------------------------------------------------------------------------------ jobs


def test_train_job_takes_the_run_lock(tmp_path: Path) -> None:
    from facd.reproduce.job import run_job
    from facd.train.rundir import RunDirBusy, RunLock

    proto = load_protocol(_protocol(tmp_path, [{"method": "scratch"}]))
    cfg = proto.row_config(proto.row("scratch"), 0, proto.teacher.weights)
    run = tmp_path / "run"
    job = {"kind": "train", "config": cfg, "run_dir": str(run)}
    with RunLock(run), pytest.raises(RunDirBusy, match="being written"):
        run_job(job)
    run_job(job)
    assert (run / "last.safetensors").is_file() and not (run / ".facd.lock").exists()


def test_job_file_errors_are_one_line(tmp_path: Path, capsys) -> None:
    from facd.reproduce.job import main

    bad = tmp_path / "job.json"
    bad.write_text(json.dumps({"kind": "nope"}))
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "python -m facd.reproduce.job: error: job kind 'nope' is unknown; use 'train', 'eval', 'split' or 'alpha'"
    )
    assert main([str(tmp_path / "missing.json")]) == 2
    assert "missing.json: cannot read the job file" in capsys.readouterr().err


def test_runner_starts_library_jobs_not_the_cli() -> None:
    """The runner and the quickstart never build ``facd train``/``facd eval`` command lines."""
    for rel in (
        "reproduce/runner.py",
        "reproduce/jobrunner.py",
        "reproduce/report.py",
        "quickstart.py",
    ):
        text = (REPO / "src" / "facd" / rel).read_text()
        assert "facd.cli" not in text, rel
        assert not re.search(r"""["']-m["'],\s*["']facd["']""", text), rel  # python -m facd
        assert not re.search(r"""\[\s*["'](train|eval|compare)["'],""", text), rel  # argv


# ------------------------------------------------------------------------------ names


def test_no_method_name_in_the_workflows() -> None:
    """Method names come from the protocol and the declarations, never from this code."""
    from facd.distill.methods import METHODS

    files = sorted((REPO / "src" / "facd" / "reproduce").glob("*.py"))
    files += [REPO / "src" / "facd" / "quickstart.py", REPO / "src" / "facd" / "evaluate.py"]
    hits = []
    for path in files:
        if path.name == "refingerprint.py":  # renames of published results, by name
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for m in re.finditer(r"""(['"])([a-z0-9-]+)\1""", line):
                if m.group(2) in METHODS:
                    hits.append(f"{path.name}:{n} {m.group(2)}")
    assert not hits


def test_quickstart_config_is_shipped_data(tmp_path: Path) -> None:
    from facd.quickstart import SCALE, STUDENT_CONFIG, TEACHER_ASSET, student_config
    from facd.train.config import load_config

    assert STUDENT_CONFIG.is_file() and STUDENT_CONFIG.parent == TEACHER_ASSET.parent
    cfg = student_config(tmp_path, 400, TEACHER_ASSET)
    assert cfg["scale"] == SCALE and cfg["train"]["lr_milestones"] == [2]
    assert load_config(None, [], base=cfg).config.teacher.weights == str(TEACHER_ASSET)
