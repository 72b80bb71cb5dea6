"""Refusals that name the file: a checkpoint missing a tensor (its name, not only a count), and a
benchmark image too small to score (its path, not only the shave)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from facd.cli import main

from .conftest import REPO

ASSET = REPO / "src" / "facd" / "assets" / "teacher-edsr-tiny-t-x4.safetensors"


def test_the_missing_tensor_is_named(tmp_path: Path, capsys) -> None:
    with safe_open(str(ASSET), "pt") as f:
        meta = f.metadata()
    sd = load_file(str(ASSET))
    del sd["body.0.body.0.weight"]
    save_file(sd, str(tmp_path / "m.safetensors"), meta)
    torch.save(sd, tmp_path / "m.pt")
    for name in ("m.safetensors", "m.pt"):
        assert main(["info", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "missing ['body.0.body.0.weight']" in err


def test_an_image_too_small_to_score_is_named(tmp_path: Path, capsys) -> None:
    import numpy as np
    from PIL import Image

    folder = tmp_path / "Tiny" / "HR"
    folder.mkdir(parents=True)
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(folder / "ok.png")
    Image.fromarray(np.zeros((8, 12, 3), np.uint8)).save(folder / "small.png")
    argv = ["eval", "--model", "bicubic", "--scale", "4", "--data-root", str(tmp_path)]
    assert main([*argv, "--sets", "Tiny"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(folder / "small.png") in err and "12x8, too small to score at x4" in err
