"""Protocol files compose: ``base:`` files are merged in first, the file's own keys win."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from facd.errors import ConfigError
from facd.reproduce.protocol import load_protocol

from .helpers import split_protocol, write_protocol


def _base(tmp: Path) -> Path:
    rows = [{"method": "scratch", "seeds": [0, 1]}, {"method": "ts", "seeds": [0]}]
    return write_protocol(tmp, split_protocol(tmp, "ci-base", rows, val_every=2))


def test_base_is_merged_and_the_file_wins(tmp_path: Path) -> None:
    base = _base(tmp_path)
    parent = load_protocol(base)
    child = tmp_path / "long" / "long.yaml"
    child.parent.mkdir()
    child.write_text(
        yaml.safe_dump(
            {
                "base": "../proto.yaml",
                "name": "ci-long",
                "shared": {"train": {"iterations": 12, "lr_milestones": [8]}},
                "results_dir": str(tmp_path / "results-long"),
            }
        )
    )
    p = load_protocol(child)
    assert p.name == "ci-long" and p.results_dir == str(tmp_path / "results-long")
    assert p.shared["train"]["iterations"] == 12 and p.shared["train"]["lr_milestones"] == [8]
    # keys the file does not give come from the base, section by section
    assert p.shared["train"]["batch_size"] == parent.shared["train"]["batch_size"]
    assert p.shared["data"] == parent.shared["data"]
    assert [(r.name, r.seeds) for r in p.rows] == [(r.name, r.seeds) for r in parent.rows]
    assert p.teacher == parent.teacher and p.scale == parent.scale
    # lists are replaced, not appended
    child.write_text(yaml.safe_dump({"base": "../proto.yaml", "rows": [{"method": "ts"}]}))
    assert [r.name for r in load_protocol(child).rows] == ["ts"]


def test_base_errors_name_the_file(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("base: b.yaml\nname: a\n")
    b.write_text("base: a.yaml\nname: b\n")
    with pytest.raises(
        ConfigError, match=r"'base' files form a cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml"
    ):
        load_protocol(a)
    a.write_text("base: missing.yaml\n")
    with pytest.raises(
        ConfigError, match=r"protocol file not found: .*missing\.yaml \(the 'base' of .*a\.yaml\)"
    ):
        load_protocol(a)
    a.write_text("base: {x: 1}\n")
    with pytest.raises(ConfigError, match="'base' must be a file name or a list of them"):
        load_protocol(a)
