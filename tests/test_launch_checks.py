"""``facd train --nproc K`` checks the user's input in the launcher, before any rank starts: one
error line and exit 2, not the error once per rank followed by torchrun's traceback and exit 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import make_image_folder

CONFIG = """\
method: scratch
scale: 2
seed: 1
student: {preset: edsr-tiny-s}
data: {train_dirs: [data], patch_size: 8}
val: {sets: [], every: 0}
train: {iterations: 2, batch_size: 4, log_every: 1, save_every: 2, device: cpu}
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("launch")
    make_image_folder(root / "data", count=2, size=(40, 48))
    make_image_folder(root / "small", count=1, size=(12, 40))
    (root / "cfg.yaml").write_text(CONFIG)
    return root


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.batch_size=1"], "'train.batch_size' 1 is not divisible by 2 processes"),
        (["data.train_dirs=[nope]"], "nope: image folder not found"),
        (
            ["data.train_dirs=[data, small]"],
            "small/img00.png: image is 40x12, smaller than the HR patch 16x16 "
            "(data.patch_size 8 x scale 2); remove it, lower data.patch_size or set "
            "data.small_images=skip",
        ),
    ],
    ids=["batch", "missing-folder", "small-image"],
)
def test_bad_input_is_one_line_before_any_rank_starts(work, overrides, message):
    cmd = [sys.executable, "-m", "facd", "train", "cfg.yaml", "--out", "r", "--nproc", "2",
           "--no-progress"]  # fmt: skip
    for item in overrides:
        cmd += ["--set", item]
    env = {**os.environ, "FACD_CACHE": str(work / "cache"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [f"facd train: error: {message}"], proc.stderr
    assert not (work / "r").exists()  # no rank ran, nothing was written
