"""benchmarks/bench_train_step.py runs (``--quick``: a check of the script, not a timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "bench_train_step.py"


def test_quick_run_measures_every_part_of_both_variants(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "step.json"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--pairs", "rcan"]
    cmd += ["--methods", "scratch", "facd", "--json", str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| facd | fast |" in done.stdout and "of ceiling" in done.stdout
    pair = json.loads(out.read_text())["pairs"]["rcan"]
    assert pair["ceiling_gmacs"] > 0
    rows = {(r["method"], r["variant"]): r for r in pair["rows"]}
    assert set(rows) == {(m, v) for m in ("scratch", "facd") for v in ("eager", "fast")}
    parts = ("data", "teacher", "student", "loss", "backward", "optimizer")
    for r in rows.values():
        assert r["total"] > 0 and r["gmac_per_step"] > 0
        assert all(r[p] >= 0 for p in parts)
        assert abs(sum(r[p] for p in parts) - r["total"]) < 0.2 * r["total"]  # medians
    for variant in ("eager", "fast"):  # scratch only enters the teacher's hook: no network
        assert rows["scratch", variant]["teacher"] < 0.001 < rows["facd", variant]["teacher"]
    # FACD's work counts the teacher's forward on top of the student's forward and backward
    assert rows["facd", "fast"]["gmac_per_step"] > rows["scratch", "fast"]["gmac_per_step"]
