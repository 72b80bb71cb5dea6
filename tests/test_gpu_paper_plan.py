"""The paper-scale protocols and the GPU plan script (its CPU dry run)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from facd.reproduce.protocol import load_protocol

from .conftest import REPO

SCRIPT = REPO / "benchmarks" / "gpu_paper_plan.sh"
P1 = ["scratch", "ts", "fakd", "lsfd", "fcd", "facd"]


def _entries(path: Path) -> list[str]:
    lines = (x.split("#")[0].strip() for x in path.read_text().splitlines())
    return [x for x in lines if x]


@pytest.mark.parametrize("name", ["paper-edsr-x4", "paper-rcan-x4"])
def test_paper_scale_protocols_compose_and_hold_out_their_split(name: str) -> None:
    proto = load_protocol(REPO / "configs" / "repro" / f"{name}.yaml")
    assert proto.name == name and [r.name for r in proto.rows] == P1
    assert proto.results_dir == f"results/{name}" and proto.report.path.endswith(f"{name}.md")
    data, val = proto.shared["data"], proto.shared["val"]
    assert set(_entries(REPO / val["split"])) <= set(_entries(REPO / data["exclude"]))
    assert proto.shared["train"]["batch_size"] == 16
    assert data["patch_size"] == 48  # the paper's LR patch
    assert proto.saturation.rows == ["scratch"]


def test_div2k_split_follows_its_stated_rule() -> None:
    names = [f"DIV2K_train_HR/{i:04d}.png" for i in range(1, 801)]
    key = lambda n: hashlib.sha256(("div2k-val10:" + n).encode()).hexdigest()  # noqa: E731
    expected = sorted(sorted(names, key=key)[:10])
    assert _entries(REPO / "configs" / "splits" / "div2k-val10.txt") == expected


@pytest.mark.slow
def test_dry_run_times_every_method_and_adds_up(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", "--no-smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    plans = json.loads(out.read_text())["plans"]
    assert [p["protocol"] for p in plans] == ["paper-edsr-x4", "paper-rcan-x4"]
    for p in plans:
        assert list(p["step_s"]) == P1 and all(t > 0 for t in p["step_s"].values())
        proto = load_protocol(REPO / "configs" / "repro" / f"{p['protocol']}.yaml")
        n = proto.shared["train"]["iterations"]
        main = sum(len(r.seeds) * n * p["step_s"][r.name] for r in proto.rows) / 3600
        assert p["gpu_hours"]["main"] == pytest.approx(main)
        assert p["gpu_hours"]["ladder"] == pytest.approx(7 * n * p["step_s"]["scratch"] / 3600)
        assert p["total_gpu_hours"] == pytest.approx(sum(p["gpu_hours"].values()))
        assert f"| **total** | **{p['total_gpu_hours']:.1f}** |" in proc.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_without_cuda_it_says_to_use_dry_run() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_paper_plan.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "--dry-run" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
