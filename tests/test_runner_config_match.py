"""A run folder written before an optional config key (default None) existed is the same run:
the protocol runner neither retrains it nor sets it aside."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from facd.reproduce.protocol import load_protocol
from facd.reproduce.records import load_config_dict
from facd.reproduce.runner import Reproduction
from facd.train.rundir import config_differences

from .helpers import split_protocol, write_protocol


def _drop_none(x: object) -> object:
    if isinstance(x, dict):
        return {k: _drop_none(v) for k, v in x.items() if v is not None}
    return x


def test_missing_keys_count_as_none() -> None:
    assert config_differences({"a": {"b": 1}}, {"a": {"b": 1, "c": None}}) == []
    assert config_differences({"a": {"b": 1}}, {"a": {"b": 2}}) == ["a.b"]
    assert config_differences({"a": {"b": 1}}, {"a": {"b": 1, "c": 0}}) == ["a.c"]


@pytest.mark.slow
def test_an_older_finished_run_is_neither_retrained_nor_set_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [{"method": "scratch", "seeds": [0]}]
    proto = load_protocol(
        write_protocol(tmp_path, split_protocol(tmp_path, "old", rows, val_every=3))
    )
    rep = Reproduction(proto, tmp_path / "runs")
    row = proto.row("scratch")
    cfg = rep.configs.row_config(row, 0)
    run_dir = rep.out / row.run_id(0)
    assert rep.jobrunner.train("first", cfg, run_dir)  # trains
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    older = _drop_none(saved)  # as written before the optional keys existed
    assert older != saved
    (run_dir / "config.yaml").write_text(yaml.safe_dump(older))
    calls: list[str] = []
    monkeypatch.setattr(rep.jobrunner, "run_job", lambda name, job: calls.append(name))
    assert rep.jobrunner.train("again", cfg, run_dir) is False and calls == []
    rep.trainings.set_aside_other_weight(row, 0, cfg)
    assert run_dir.is_dir() and not (rep.out / "superseded").exists()
    assert not config_differences(older, load_config_dict(cfg))
