"""Final evaluation of one model: benchmark Y-PSNR/SSIM and PSNR against the teacher's output.

The benchmark numbers come from :func:`facd.evaluate.evaluate` on the very weights file that is
published, so ``facd eval --model <file>`` gives the same numbers. Each SR image is compared, in
memory, with the teacher's SR image of the same name (uint8, as the teacher's own evaluation
wrote it as PNG) with the same protocol: Y channel, ``shave = scale``. That is the analogue of
the paper's Table 13 (how closely the student follows the teacher). The student's SR images are
not written: writing and re-reading them as PNG took about 40 % of a student's evaluation on
Urban100 (docs/performance.md), for the same uint8 pixels.

The protocol runner calls :func:`evaluate_model` in a process of its own through an ``eval``
job (:mod:`facd.reproduce.job`).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from facd.data.image_io import read_image
from facd.fileio import atomic_write_text, remove_tree
from facd.metrics import psnr_y

DONE_MARKER = "COMPLETE"


def psnr_against(sr_dir: Path, ref_dir: Path, sets: list[str], scale: int) -> dict[str, Any]:
    """Mean Y-PSNR (shave = scale) of each SR image against the reference image of the same name.

    Both folders are in ``evaluate``'s ``save_images`` layout: ``<Set>/X<s>/<name>.png``.
    """
    out: dict[str, Any] = {}
    for name in sets:
        per_image: dict[str, float] = {}
        folder = sr_dir / name / f"X{scale}"
        for path in sorted(folder.glob("*.png")):
            ref = ref_dir / name / f"X{scale}" / path.name
            if not ref.is_file():
                raise FileNotFoundError(f"teacher output missing: {ref}")
            per_image[path.stem] = psnr_y(read_image(path), read_image(ref), scale)
        out[name] = _summary(per_image)
    return out


def _summary(per_image: dict[str, float]) -> dict[str, Any]:
    """Mean over the finite values (an image identical to the teacher's has infinite PSNR)."""
    values = list(per_image.values())
    finite = [v for v in values if math.isfinite(v)]
    return {
        "psnr_y": math.fsum(finite) / len(finite) if finite else math.inf,
        "images": len(values),
        "identical_images": len(values) - len(finite),
        "per_image": per_image,
    }


def evaluate_model(
    model_ref: str,
    sets: list[str],
    scale: int,
    data_root: str | Path,
    teacher_sr: Path | None = None,
    keep_sr: Path | None = None,
) -> dict[str, Any]:
    """``evaluate`` plus PSNR against the teacher; ``keep_sr`` keeps the SR images there."""
    import torch

    from facd.evaluate import BICUBIC, evaluate

    if _single_threaded():
        torch.set_num_threads(1)
    t0 = time.perf_counter()
    if model_ref == BICUBIC:
        model: Any = BICUBIC
        params = 0
    else:
        from facd.archs.io import load_model

        model, _ = load_model(model_ref, scale)
        params = sum(p.numel() for p in model.parameters())
    if keep_sr is not None:
        remove_tree(keep_sr)
    against = _AgainstTeacher(teacher_sr, scale) if teacher_sr is not None else None
    res = evaluate(
        model,
        sets,
        scale,
        data_root,
        device="cpu",
        save_images=keep_sr,  # only the teacher's images are kept (as PNG)
        progress=False,
        model_name=str(model_ref),
        on_image=against,
    )
    total = time.perf_counter() - t0
    teacher = against.result(sets) if against is not None else None
    if keep_sr is not None:
        atomic_write_text(keep_sr / DONE_MARKER, "ok\n")
    teacher_s = against.seconds if against is not None else 0.0
    return {
        "model": str(model_ref),
        "params": params,
        "sets": res["sets"],
        "teacher_psnr": teacher,
        "eval_s": round(total - teacher_s, 2),
        "teacher_psnr_s": round(teacher_s, 2),
    }


class _AgainstTeacher:
    """``evaluate``'s ``on_image``: Y-PSNR (shave = scale) of each SR image, in memory, against
    the teacher's image of the same name (read from its PNG). The numbers are those of
    :func:`psnr_against` on the PNGs the SR images would have been written to (PNG is lossless:
    the uint8 pixels are the same), without writing and re-reading them."""

    def __init__(self, teacher_sr: Path, scale: int) -> None:
        self.root, self.scale = teacher_sr, scale
        self.per_set: dict[str, dict[str, float]] = {}
        self.seconds = 0.0

    def __call__(self, set_name: str, name: str, sr: np.ndarray) -> None:
        t0 = time.perf_counter()
        ref = self.root / set_name / f"X{self.scale}" / f"{name}.png"
        if not ref.is_file():
            raise FileNotFoundError(f"teacher output missing: {ref}")
        value = psnr_y(sr, read_image(ref), self.scale)
        self.per_set.setdefault(set_name, {})[name] = value
        self.seconds += time.perf_counter() - t0

    def result(self, sets: list[str]) -> dict[str, Any]:
        """The :func:`psnr_against` document: images in name order, as its folder glob."""
        return {s: _summary(dict(sorted(self.per_set.get(s, {}).items()))) for s in sets}


def evaluate_split(
    models: list[str], split: str | Path, train_dirs: list[str], scale: int
) -> dict[str, Any]:
    """Y-PSNR/SSIM of each weights file on the validation split (``val.split``'s list of
    training images), through :func:`facd.evaluate.evaluate`: ``{"split", "images", "models":
    {file: {"psnr_y", "ssim_y"}}, "eval_s"}``."""
    import torch

    from facd.archs.io import load_model
    from facd.data.benchmark import SplitSet
    from facd.evaluate import evaluate

    if _single_threaded():
        torch.set_num_threads(1)
    t0 = time.perf_counter()
    bench = SplitSet(split, list(train_dirs), scale)
    out: dict[str, Any] = {}
    for ref in models:
        model, _ = load_model(ref, scale)
        res = evaluate(model, [bench], scale, bench.root, device="cpu", progress=False)
        got = res["sets"][bench.name]
        out[ref] = {"psnr_y": got["psnr_y"], "ssim_y": got["ssim_y"]}
    return {
        "split": bench.name,
        "images": len(bench),
        "models": out,
        "eval_s": round(time.perf_counter() - t0, 2),
    }


def _single_threaded() -> bool:
    import os

    return os.environ.get("OMP_NUM_THREADS") == "1"


def write_result(path: Path, doc: dict[str, Any]) -> None:
    """Write :func:`evaluate_model`'s result as JSON (numpy scalars as plain numbers)."""
    atomic_write_text(path, json.dumps(doc, indent=1, default=_json_default) + "\n")


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
