"""What used to be lost or blamed on the wrong thing is named: LR images without HR in
``facd eval``, frames and colour profiles in ``facd upscale``, a broken teacher or input instead
of a loss term or the weights, a dangling or top-level ``--out``, a symlinked ``checkpoints/``
or ``tb/``, and a resume under another thread count."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from facd.cli import main

from .helpers import make_image_folder

CONFIG = """\
method: {method}
scale: 2
seed: 0
student: {{preset: edsr-tiny-s}}
{teacher}data: {{train_dirs: [data], patch_size: 8}}
val: {{sets: [], every: 0}}
train: {{iterations: 2, batch_size: 2, log_every: 1, save_every: 1, device: cpu}}
"""
SCRATCH = CONFIG.format(method="scratch", teacher="")
TS = CONFIG.format(
    method="ts", teacher="teacher: {preset: edsr-tiny-t, weights: teacher.safetensors}\n"
)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FACD_CACHE", str(tmp_path_factory.getbasetemp() / "lr-cache"))


def lines(capsys, kind: str, command: str = "train") -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return [ln for ln in err.splitlines() if ln.startswith(f"facd {command}: {kind}:")]


def error_line(capsys, command: str = "train") -> str:
    found = lines(capsys, "error", command)
    assert len(found) == 1, found
    return found[0]


def train(*extra: str, out: str = "run", config: str = "cfg.yaml") -> int:
    return main(["train", config, "--out", out, "--no-progress", *extra])


@pytest.fixture()
def work(tmp_path, monkeypatch) -> Path:
    """``cfg.yaml`` (scratch) and ``data/`` in the working folder ``tmp_path``; no run yet."""
    make_image_folder(tmp_path / "data", count=3, size=(40, 48))
    (tmp_path / "cfg.yaml").write_text(SCRATCH)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# ------------------------------------------------------- 1. eval: LR images without an HR image


def test_eval_counts_and_names_lr_images_without_hr(tmp_path, capsys):
    make_image_folder(tmp_path / "bench" / "Tiny" / "HR", count=2, size=(24, 20))
    lr_dir = tmp_path / "bench" / "Tiny" / "LR_bicubic" / "X2"
    lr_dir.mkdir(parents=True)
    for name in ("ghostx2.png", "lostx2.png"):
        Image.new("RGB", (12, 10)).save(lr_dir / name)
    argv = ["eval", "-m", "bicubic", "-s", "2", "--data-root", str(tmp_path / "bench")]
    assert main([*argv, "--sets", "Tiny", "-q"]) == 0
    (line,) = lines(capsys, "warning", "eval")
    assert f"{lr_dir}: 2 LR image(s) have no HR image in" in line
    assert "(ghostx2.png, lostx2.png)" in line and "Tiny is scored on its 2 HR image(s)" in line


def test_eval_is_quiet_when_every_lr_image_has_its_hr(tmp_path, capsys):
    make_image_folder(tmp_path / "bench" / "Tiny" / "HR", count=2, size=(24, 20))
    lr_dir = tmp_path / "bench" / "Tiny" / "LR_bicubic" / "X2"
    lr_dir.mkdir(parents=True)
    (lr_dir / "notes.txt").write_text("not an image")
    argv = ["eval", "-m", "bicubic", "-s", "2", "--data-root", str(tmp_path / "bench")]
    assert main([*argv, "--sets", "Tiny", "-q"]) == 0
    assert lines(capsys, "warning", "eval") == []
