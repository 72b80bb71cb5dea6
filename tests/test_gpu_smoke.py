"""The GPU smoke script's CPU dry run: same training and evaluation path, tiny presets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_smoke.sh"


@pytest.mark.slow
def test_dry_run_prints_the_table(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", "--precisions", "fp32", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| precision | steps | ms/step | target |" in proc.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [r["precision"] for r in rows] == ["fp32"]
    assert rows[0]["iterations"] == 4 and rows[0]["ms_per_step"] > 0
    assert rows[0]["peak_gpu_mib"] is None  # no GPU memory on the CPU


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message on a machine without CUDA"
)
def test_without_cuda_it_says_to_use_dry_run() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_smoke.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "--dry-run" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
