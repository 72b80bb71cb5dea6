"""The README's offline quickstart, end to end with a few iterations (no shared data needed)."""

from __future__ import annotations

import json

import pytest

from facd.cli import main
from facd.quickstart import TEACHER_ASSET

from .helpers import make_image_folder


def test_shipped_teacher_loads():
    from facd.archs.io import load_model

    _, spec = load_model(TEACHER_ASSET)
    assert (spec.arch, spec.scale, spec.n_blocks, spec.n_feats) == ("edsr", 4, 6, 32)


@pytest.mark.parametrize("source", ["skimage", "folder"])
def test_quickstart_runs_offline(tmp_path, capsys, source):
    args = ["quickstart", "--out", str(tmp_path / "qs"), "--iterations", "3", "--no-progress"]
    if source == "folder":
        args += ["--data", str(make_image_folder(tmp_path / "imgs", count=4, size=(96, 96)))]
    else:
        pytest.importorskip("skimage")
    assert main(args) == 0
    out = capsys.readouterr().out
    for row in ("bicubic", "teacher", "student (FACD)"):
        assert row in out
    results = json.loads((tmp_path / "qs/results.json").read_text())
    assert set(results) == {"bicubic", "teacher", "student (FACD)"}
    assert results["teacher"]["psnr_y"] > results["bicubic"]["psnr_y"]  # the shipped teacher works
    assert (tmp_path / "qs/comparison.png").stat().st_size > 0
    assert (tmp_path / "qs/student/last.safetensors").exists()
