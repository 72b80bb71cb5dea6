"""A run folder written before an optional config key (default None) existed is the same run:
the protocol runner neither retrains it nor sets it aside. A run folder of another definition
(a key a resume refuses differs) is set aside whole and the run starts again."""

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
    assert run_dir.is_dir() and not (rep.out / "superseded").exists()
    assert not config_differences(older, load_config_dict(cfg))


@pytest.mark.slow
def test_a_run_folder_of_another_definition_is_set_aside_and_the_run_starts_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The protocol's lr changed after a run started: its folder cannot be resumed (a resume
    would be refused), so it moves to ``superseded/`` whole and the run trains afresh; a change
    a resume accepts (more iterations) keeps the folder."""
    rows = [{"method": "scratch", "seeds": [0]}]
    proto = load_protocol(
        write_protocol(tmp_path, split_protocol(tmp_path, "old", rows, val_every=3))
    )
    logged: list[str] = []
    rep = Reproduction(proto, tmp_path / "runs", log=logged.append)
    row = proto.row("scratch")
    cfg = rep.configs.row_config(row, 0)
    run_dir = rep.out / row.run_id(0)
    assert rep.jobrunner.train("first", cfg, run_dir)
    first = (run_dir / "last.safetensors").read_bytes()
    longer = {**cfg, "train": {**cfg["train"], "iterations": cfg["train"]["iterations"] + 2}}
    calls: list[str] = []
    monkeypatch.setattr(rep.jobrunner, "run_job", lambda name, job: calls.append(name))
    with pytest.raises(Exception, match="training stopped before"):
        rep.jobrunner.train("longer", longer, run_dir)  # resumable: resumed in place
    assert calls == ["longer"] and not (rep.out / "superseded").exists()
    monkeypatch.undo()
    other = {**cfg, "train": {**cfg["train"], "lr": cfg["train"]["lr"] * 2}}
    assert rep.jobrunner.train("other-lr", other, run_dir)
    kept = rep.out / "superseded" / f"{run_dir.name}-1"
    assert (kept / "last.safetensors").read_bytes() == first  # nothing deleted
    assert (
        yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["lr"] == other["train"]["lr"]
    )
    assert any("train.lr differ" in m and "superseded" in m for m in logged)
