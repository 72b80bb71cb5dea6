"""alpha = 0 fraction measured after training, on patches of a chosen size (the paper's 48).

FACD's indicator (Eq. 1, :func:`facd.distill.pixel.adaptive_indicator`) is 0 on a patch where the
student is already closer to the ground truth than the teacher. The fraction logged during
training depends on the training patch size (small patches inflate it: a 16-pixel patch is
often flat), so the protocol also measures it afterwards, on LR patches of ``patch_size`` pixels
(48 in the paper) drawn from the training images (the same list, ``data.exclude`` applied), with
a fixed seed and no augmentation: the same patches for every network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from facd.distill.pixel import adaptive_indicator


def alpha0_on_patches(
    student: str | Path,
    teacher: str | Path,
    train_dirs: list[str],
    scale: int,
    patch_size: int = 48,
    samples: int = 512,
    seed: int = 20230,
    exclude: str | None = None,
    batch: int = 16,
) -> dict[str, Any]:
    """The fraction of ``samples`` LR patches (``patch_size`` pixels, training images) on which
    the student's output is closer to the ground truth than the teacher's (alpha = 0)."""
    from facd import TrainPatches
    from facd.archs.io import load_model

    s_net, _ = load_model(student, scale)
    t_net, _ = load_model(teacher, scale)
    s_net.eval()
    t_net.eval()
    batch = max(1, min(batch, samples))
    batches = -(-samples // batch)
    data = TrainPatches(
        list(train_dirs),
        scale,
        patch_size,
        batch,
        batches,
        seed=seed,
        augment=False,
        small_images="skip",
        exclude=exclude,
        progress=False,
    )
    zeros = 0
    total = 0
    with torch.inference_mode():
        for t in range(batches):
            lr, hr = data[t]
            alpha = adaptive_indicator(s_net(lr), t_net(lr), hr)
            zeros += int((alpha == 0).sum())
            total += int(alpha.numel())
    return {
        "patch_size": patch_size,
        "samples": total,
        "seed": seed,
        "alpha0": zeros,
        "alpha0_frac": zeros / total,
    }
