"""The protocol reference: ``facd reproduce --schema``, the committed docs/protocol-schema.json,
and docs/protocols.md (its example protocol loads; it names every key of a protocol file)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from facd.cli import main
from facd.reproduce.protocol import (
    EvalSection,
    Protocol,
    Row,
    SaturationSection,
    StudySection,
    TeacherSection,
    TeacherStageSection,
    load_protocol,
)
from facd.reproduce.reportspec import QualitativeSection, ReportSection
from facd.reproduce.runner import Reproduction

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "protocols.md"


def _example() -> str:
    """The YAML block under the doc's "A minimal protocol" heading."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## A minimal protocol", 1)[1]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    assert blocks, "docs/protocols.md: no yaml block under '## A minimal protocol'"
    return blocks[0]


def test_schema_flag_prints_the_committed_schema(capsys: pytest.CaptureFixture) -> None:
    from facd.commands.reproduce import protocol_schema

    assert main(["reproduce", "--schema"]) == 0  # no PROTOCOL needed
    printed = json.loads(capsys.readouterr().out)
    committed = json.loads((REPO / "docs" / "protocol-schema.json").read_text())
    assert printed == protocol_schema()
    assert committed == printed, "regenerate: facd reproduce --schema > docs/protocol-schema.json"


def test_schema_describes_the_protocol_keys() -> None:
    from facd.commands.reproduce import protocol_schema

    schema = protocol_schema()
    assert schema["title"] == "facd reproduction protocol"
    assert schema["additionalProperties"] is False  # unknown keys are refused
    props = schema["properties"]
    assert set(props) == {f.name for f in dataclasses.fields(Protocol)}
    row = props["rows"]["items"]["properties"]
    assert "sweep" in row["weight_grid"]["description"]
    assert props["saturation"]["properties"]["factor"] == {
        "type": "integer",
        "minimum": 2,
        "maximum": 16,
        "description": "how much longer the check's schedule is",
        "default": 2,
    }
    claim = props["report"]["properties"]["claims"]["items"]["properties"]
    assert {"type": "null"} in claim["paper_ref"]["anyOf"]


def test_reproduce_without_protocol_is_refused(capsys: pytest.CaptureFixture) -> None:
    assert main(["reproduce"]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs PROTOCOL" in err and "--schema" in err and "\n" not in err


def test_doc_example_protocol_loads_and_meets_its_size_ratio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)  # the example's paths are relative to the repository root
    path = tmp_path / "my-first.yaml"
    path.write_text(_example())
    proto = load_protocol(path)
    assert [r.name for r in proto.rows] == ["scratch", "fcd", "facd"]
    assert proto.val_split == "configs/splits/val291.txt"
    assert proto.row("facd").weight_source == "fcd"
    assert [c.paper_ref is not None for c in proto.report.claims] == [True, True]
    sizes = Reproduction(proto, tmp_path / "runs", log=lambda m: None).check_sizes()
    assert sizes["ratio"] >= proto.min_param_ratio


@pytest.mark.parametrize(
    "section",
    [
        Protocol,
        Row,
        ReportSection,
        QualitativeSection,
        SaturationSection,
        StudySection,
        TeacherSection,
        TeacherStageSection,
        EvalSection,
    ],
)
def test_doc_names_every_key(section: type) -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [f.name for f in dataclasses.fields(section) if f"`{f.name}`" not in text]
    assert not missing, f"docs/protocols.md does not name {section.__name__} keys {missing}"


def test_docs_link_the_protocol_reference() -> None:
    assert "(docs/protocols.md)" in (REPO / "README.md").read_text()
    assert "(protocols.md)" in (REPO / "docs" / "config.md").read_text()
