"""tools/saturation_ladder.py: a row trained at scaled schedules, each rung measured on the
protocol's validation split, the gain of each doubling judged by the saturation rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from .helpers import load_tool, split_protocol, write_protocol


@pytest.mark.slow
def test_ladder_trains_scaled_schedules_and_reports_gains(tmp_path: Path, capsys) -> None:
    doc = split_protocol(tmp_path, "ci-ladder", [{"method": "scratch", "seeds": [0]}], val_every=2)
    proto = write_protocol(tmp_path, doc)
    out = tmp_path / "runs"
    table = tmp_path / "ladder.json"
    argv = [str(proto), "--row", "scratch", "--factors", "2", "1", "--out", str(out)]
    assert load_tool("saturation_ladder").main([*argv, "--json", str(table)]) == 0
    rungs = json.loads(table.read_text())["rungs"]
    assert [r["iterations"] for r in rungs] == [3, 6]
    for r in rungs:  # each rung's value is its own run's last validation on the split
        run_dir = out / "ladder" / f"scratch-s0-x{r['factor']}"
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert cfg["train"]["iterations"] == r["iterations"]
        last = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
        val = [x["val"] for x in last if "val" in x][-1]
        assert abs(next(iter(val.values()))["psnr_y"] - r["psnr_y"]) < 1e-9
    assert abs(rungs[1]["gain_db"] - (rungs[1]["psnr_y"] - rungs[0]["psnr_y"])) < 1e-12
    text = capsys.readouterr().out
    verdict = "yes" if rungs[1]["gain_db"] < 0.02 else "no"
    assert f"| 6 | {rungs[1]['psnr_y']:.4f} | {rungs[1]['gain_db']:+.4f} | 3: {verdict} |" in text
    # a second call reuses both rungs: no new log lines
    logs = {p: p.read_text() for p in (out / "logs").glob("*.log")}
    assert load_tool("saturation_ladder").main(argv) == 0
    assert {p: p.read_text() for p in (out / "logs").glob("*.log")} == logs
