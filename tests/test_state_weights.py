"""tools/state_weights.py: a network taken out of a kept training state."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from facd.cli import main

from .conftest import REPO
from .helpers import load_tool, make_image_folder


def test_the_last_state_gives_the_last_weights_and_an_earlier_one_differs(tmp_path: Path) -> None:
    train = make_image_folder(tmp_path / "train", count=3)
    run = tmp_path / "run"
    argv = [
        "train", str(REPO / "configs/tiny/scratch.yaml"), "--out", str(run),
        "--set", f"data.train_dirs=[{train}]", "--set", "data.patch_size=8",
        "--set", "val.sets=[]", "--set", "train.iterations=4", "--set", "train.batch_size=2",
        "--set", "train.save_every=2", "--set", "train.keep_checkpoints=5",
    ]  # fmt: skip
    assert main(argv) == 0
    tool = load_tool("state_weights")
    assert tool.main([str(run), "--iteration", "4", "-o", str(tmp_path / "w4.safetensors")]) == 0
    assert tool.main([str(run), "--iteration", "2", "-o", str(tmp_path / "w2.safetensors")]) == 0
    last, w4, w2 = (load_file(p) for p in (run / "last.safetensors", tmp_path / "w4.safetensors", tmp_path / "w2.safetensors"))  # fmt: skip
    assert last.keys() == w4.keys() and all(torch.equal(last[k], w4[k]) for k in last)
    assert any(not torch.equal(last[k], w2[k]) for k in last)
    assert tool.main([str(run), "--iteration", "3", "-o", str(tmp_path / "w3.safetensors")]) == 2
