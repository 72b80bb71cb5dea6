"""Shared test utilities: synthetic images and tiny checkpoints (no shared data needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from facd.archs import build_model, preset_spec
from facd.archs.io import save_model


def make_image_folder(
    folder: Path, count: int = 4, size: tuple[int, int] = (72, 64), seed: int = 0
) -> Path:
    """Smooth random RGB images (low-frequency noise plus edges), so SR has something to learn."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    for i in range(count):
        coarse = rng.random((h // 8 + 2, w // 8 + 2, 3))
        img = np.kron(coarse, np.ones((8, 8, 1)))[:h, :w]
        img[:, w // 2 :] *= 0.5
        Image.fromarray((img * 255).astype(np.uint8)).save(folder / f"img{i:02d}.png")
    return folder


def make_checkpoint(path: Path, preset: str = "edsr-tiny-t", scale: int = 4, seed: int = 0) -> Path:
    import torch

    torch.manual_seed(seed)
    spec = preset_spec(preset, scale)
    save_model(path, build_model(spec), spec)
    return path


def make_finished_run(root: Path, config: str, bench: bool = False) -> Path:
    """``cfg.yaml`` (``config``), three training images in ``data/`` (and, with ``bench``, a
    one-image benchmark set ``bench/Tiny``), and ``run/``: the config trained by the CLI,
    with ``root`` as the working folder. Returns ``root``."""
    import os

    from facd.cli import main

    make_image_folder(root / "data", count=3, size=(40, 48))
    if bench:
        make_image_folder(root / "bench/Tiny/HR", count=1, size=(24, 24), seed=5)
    (root / "cfg.yaml").write_text(config)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert main(["train", "cfg.yaml", "--out", "run", "--no-progress"]) == 0
    finally:
        os.chdir(cwd)
    return root
