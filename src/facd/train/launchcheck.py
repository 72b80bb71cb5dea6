"""Checks that ``facd train --nproc K`` runs in the launcher, before any rank starts.

Every rank would otherwise find the same bad input on its own and report it: the error printed
once per rank, then torchrun's traceback of the failed ranks, and exit 1. Checked here, each is
one line and exit 2, and no rank is started:

- ``train.batch_size`` divisible by K (each rank takes an equal share of the global batch);
- ``data.train_dirs``: every folder exists and, after ``data.exclude``, holds images;
- every training image is at least the HR patch (``data.patch_size`` x ``scale``) on both sides
  (``data.small_images: skip``: at least one is). Only the image headers are read; an image
  whose header cannot be read is decoded fully, for the reader's own message.

The messages are those of the single-process run (:class:`facd.data.patches.TrainPatches`,
:class:`facd.train.trainer.Trainer`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facd.errors import ConfigError, DataError


def check_before_launch(rcfg: Any, nproc: int) -> None:
    """Raise the one-line error a rank would raise for bad input (see the module docstring)."""
    from facd.data.patches import too_small_message, training_image_paths

    cfg = rcfg.config
    if cfg.train.batch_size % nproc:
        raise ConfigError(
            f"'train.batch_size' {cfg.train.batch_size} is not divisible by {nproc} processes"
        )
    dirs = [str(d) for d in cfg.data.train_dirs]
    paths = training_image_paths(dirs, cfg.data.exclude)
    if not paths:
        raise DataError(f"no training images in {', '.join(dirs)}")
    patch, scale = cfg.data.patch_size, cfg.scale
    usable = 0
    for path in paths:
        width, height = image_size(path)
        if height // scale >= patch and width // scale >= patch:
            usable += 1
        elif cfg.data.small_images == "error":
            raise DataError(too_small_message(path, width, height, patch, scale))
    if not usable:
        need = patch * scale
        raise DataError(f"no training image is at least {need}x{need} pixels in {', '.join(dirs)}")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the image's header; a file whose header does not read is decoded
    by :func:`facd.data.image_io.read_image`, which names the problem."""
    from PIL import Image

    from facd.data.image_io import read_image

    try:
        with Image.open(path) as img:
            return img.size
    except Exception:  # noqa: BLE001 - PIL raises many types; read_image names the problem
        h, w = read_image(path).shape[:2]
        return w, h
