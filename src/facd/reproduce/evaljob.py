"""Final evaluation of one model: benchmark Y-PSNR/SSIM and PSNR against the teacher's output.

The benchmark numbers come from :func:`facd.evaluate.evaluate` on the very weights file that is
published, so ``facd eval --model <file>`` gives the same numbers. The SR images it writes are
then compared with the teacher's SR images (uint8, as the teacher's own evaluation wrote them)
with the same protocol: Y channel, ``shave = scale``. That is the analogue of the paper's
Table 13 (how closely the student follows the teacher).

The protocol runner calls :func:`evaluate_model` in a process of its own through an ``eval``
job (:mod:`facd.reproduce.job`).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from facd.data.image_io import read_image
from facd.fileio import atomic_write_text
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
        values = list(per_image.values())
        finite = [v for v in values if math.isfinite(v)]
        out[name] = {
            "psnr_y": math.fsum(finite) / len(finite) if finite else math.inf,
            "images": len(values),
            "identical_images": len(values) - len(finite),
            "per_image": per_image,
        }
    return out


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
    tmp = Path(tempfile.mkdtemp(prefix="facd-repro-sr-"))
    sr_dir = keep_sr if keep_sr is not None else tmp
    try:
        if keep_sr is not None and keep_sr.exists():
            shutil.rmtree(keep_sr)
        res = evaluate(
            model,
            sets,
            scale,
            data_root,
            device="cpu",
            save_images=sr_dir,
            progress=False,
            model_name=str(model_ref),
        )
        eval_s = time.perf_counter() - t0
        teacher = psnr_against(sr_dir, teacher_sr, sets, scale) if teacher_sr else None
        if keep_sr is not None:
            (keep_sr / DONE_MARKER).write_text("ok\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "model": str(model_ref),
        "params": params,
        "sets": res["sets"],
        "teacher_psnr": teacher,
        "eval_s": round(eval_s, 2),
        "teacher_psnr_s": round(time.perf_counter() - t0 - eval_s, 2),
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
