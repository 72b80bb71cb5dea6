"""Every result a protocol has published (``configs/repro/*.yaml``) is current: each run's JSON
matches its row's resolved definition and its weights (:meth:`RunConfigs.is_cached`), and each
weight-sweep run's JSON carries the fingerprint its row and weight have today. A change to a
method, a default or the fingerprint that would silently orphan published rows fails here, for
protocols still being run (the equal-budget study) as for finished ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facd.reproduce.protocol import load_protocol, sweep_run_id
from facd.reproduce.runner import Reproduction

REPO = Path(__file__).resolve().parents[1]
PROTOCOLS = sorted((REPO / "configs" / "repro").glob("*.yaml"))


def _published(path: Path) -> tuple:
    proto = load_protocol(str(path.relative_to(REPO)))
    results = REPO / proto.results_dir
    runs = [(r, s) for r in proto.rows if not r.skip for s in r.seeds]
    runs = [(r, s) for r, s in runs if (results / f"{r.run_id(s)}.json").is_file()]
    sweeps = [
        (r, w, results / f"{sweep_run_id(r.name, w, proto.sweep_seed)}.json")
        for r in proto.rows
        if r.weight_grid and not r.skip
        for w in r.weight_grid
    ]
    return proto, runs, [s for s in sweeps if s[2].is_file()]


def _has_results(path: Path) -> bool:
    """Whether the protocol has published a run or a sweep run (read without loading it)."""
    import yaml

    results = (yaml.safe_load(path.read_text()) or {}).get("results_dir")
    return bool(results) and any((REPO / results).glob("*.json"))


PUBLISHED = [p for p in PROTOCOLS if _has_results(p)]


def test_the_study_and_the_finished_protocols_are_checked() -> None:
    assert {"mini-x4", "swinir-pilot", "budget-rcan-x4"} <= {p.stem for p in PUBLISHED}


@pytest.mark.parametrize("path", PUBLISHED, ids=[p.stem for p in PUBLISHED])
def test_published_rows_and_sweep_runs_are_current(path: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(REPO)
    proto, runs, sweeps = _published(path)
    rep = Reproduction(proto, tmp_path / "runs")
    stale = [r.run_id(s) for r, s in runs if not rep.configs.is_cached(r, s)]
    assert stale == [], f"{path.name}: published results no longer match their rows"
    for row, weight, doc_path in sweeps:
        doc = json.loads(doc_path.read_text())
        assert doc["fingerprint"] == rep.configs.sweep_fingerprint(row, weight), doc_path.name
