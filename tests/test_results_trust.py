"""Reproduction trusts no JSON it finds: results are checked before use, a protocol never
writes into another's results, one ``facd reproduce`` at a time per results folder, and
damaged results are named (issue: one discipline for every file facd writes, item 6)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facd.cli import main
from facd.errors import ConfigError, RunDirBusy
from facd.reproduce.checks import check_owner, lock_results, read_result, run_problems
from facd.reproduce.protocol import load_protocol
from facd.reproduce.results import Results

from .conftest import REPO

PROTOCOLS = sorted((REPO / "configs" / "repro").glob("*.yaml"))


def _published(tmp_path: Path) -> Path:
    """A copy of mini-x4's committed results, and the protocol pointing at it."""
    import yaml

    res = tmp_path / "results"
    shutil.copytree(REPO / "results" / "repro", res)
    doc = yaml.safe_load((REPO / "configs" / "repro" / "mini-x4.yaml").read_text())
    doc["results_dir"] = str(res)
    doc["report"] = {**doc["report"], "path": str(tmp_path / "results.md"), "include": []}
    doc["report"].pop("readme", None)
    doc["figures_dir"] = str(tmp_path / "img")
    path = tmp_path / "mini.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_no_two_protocols_share_a_results_folder_or_a_report() -> None:
    protos = [load_protocol(p.relative_to(REPO)) for p in PROTOCOLS]
    dirs = [p.results_dir for p in protos]
    reports = [p.report.path for p in protos]
    assert len(set(dirs)) == len(dirs), dirs
    assert len(set(reports)) == len(reports), reports


def test_an_edited_mean_is_caught_by_its_own_per_image_values(tmp_path: Path) -> None:
    proto_path = _published(tmp_path)
    run = tmp_path / "results" / "facd-s0.json"
    doc = json.loads(run.read_text())
    assert run_problems(doc, "mini-x4", run.with_suffix(".safetensors")) == []
    doc["sets"]["Set5"]["psnr_y"] += 27.0  # a claim turned into "holds"
    run.write_text(json.dumps(doc))
    problems = run_problems(doc, "mini-x4", run.with_suffix(".safetensors"))
    assert len(problems) == 1 and "Set5 psnr_y" in problems[0] and "per_image" in problems[0]
    res = Results.load(load_protocol(proto_path))
    assert "facd-s0" not in res.runs and "facd-s0.json" in res.damaged
    assert main(["reproduce", str(proto_path), "--report-only", "--no-figures"]) == 0
    report = (tmp_path / "results.md").read_text()
    assert "**Damaged results left out:** `facd-s0.json` (Set5 psnr_y" in report


def test_a_truncated_result_and_foreign_weights_are_named(tmp_path: Path) -> None:
    _published(tmp_path)
    run = tmp_path / "results" / "fakd-s0.json"
    run.write_text(run.read_text()[:500])
    doc, why = read_result(run)
    assert doc is None and why is not None and "not valid JSON" in why
    other = json.loads((tmp_path / "results" / "fcd-s0.json").read_text())
    weights = tmp_path / "results" / "fcd-s1.safetensors"  # another run's weights
    assert run_problems(other, "mini-x4", weights) == [
        "weights_sha256 is not the SHA-256 of fcd-s1.safetensors"
    ]
    assert run_problems(other, "swinir-pilot", None) == [
        "it was written by protocol 'mini-x4', not 'swinir-pilot'"
    ]


def test_a_protocol_never_writes_into_anothers_results(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="holds the results of protocol 'mini-x4'"):
        check_owner("results/repro", str(tmp_path / "x.md"), "new-protocol")
    with pytest.raises(ConfigError, match="report of the results in results/repro"):
        check_owner(str(tmp_path / "res"), "docs/results.md", "new-protocol")
    check_owner("results/repro", "docs/results.md", "mini-x4")  # its own: fine


def test_one_reproduce_at_a_time_per_results_folder(tmp_path: Path) -> None:
    folder = tmp_path / "res"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from facd.reproduce.checks import lock_results; "
            f"lock_results({str(folder)!r}); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(RunDirBusy, match=f"another facd reproduce \\(pid {holder.pid}\\)"):
            lock_results(str(folder))
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    lock_results(str(folder)).release()  # free again once the holder is gone


def test_the_runner_makes_an_edited_result_again(tmp_path: Path) -> None:
    from facd.reproduce.runner import Reproduction

    proto = load_protocol(_published(tmp_path))
    logs: list[str] = []
    rep = Reproduction(proto, tmp_path / "runs", log=logs.append)
    row = proto.row("facd")
    assert rep.configs.is_cached(row, 0)  # the published result stands
    run = tmp_path / "results" / "facd-s0.json"
    doc = json.loads(run.read_text())
    doc["sets"]["Set14"]["per_image"]["baboon"]["psnr_y"] += 1.0
    run.write_text(json.dumps(doc))
    assert not rep.configs.is_cached(row, 0)
    assert any("facd-s0.json is damaged (Set14 psnr_y" in line for line in logs)


@pytest.mark.parametrize("jobs", ["0", "100000", "two"])
def test_jobs_is_bounded_in_one_line(jobs: str, capsys) -> None:
    with pytest.raises(SystemExit) as err:
        main(["reproduce", "configs/repro/mini-x4.yaml", "--jobs", jobs])
    assert err.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert "argument --jobs" in lines[-1] and (
        "between 1 and 256" in lines[-1] or "integer" in lines[-1]
    )
