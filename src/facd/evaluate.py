"""Benchmark evaluation: Y-PSNR / SSIM of a network (or the bicubic baseline) on test sets.

Protocol (the EDSR/RCAN convention, see ``docs/evaluation.md``):

* LR input: the stored ``LR_bicubic`` file, or MATLAB bicubic of the modcropped HR.
* The network runs per image in fp32 under ``torch.inference_mode``; its output is clamped to
  [0, 1] and quantised to uint8 (``round(x * 255)``) before measuring.
* ``"bicubic"`` is MATLAB ``imresize(LR, s, 'bicubic')`` of the uint8 RGB LR image.
* PSNR and SSIM on Y (``facd.metrics``), ``shave = scale`` pixels off every border;
  single-channel HR images follow ``gray`` (``"native"``: their own grey values).
* A set's score is the mean over its images.
* ``self_ensemble``: the x8 geometric ensemble of :mod:`facd.infer.ensemble` (the same as
  ``facd upscale --self-ensemble``); ``device`` is resolved by :mod:`facd.infer.device` (``auto``:
  CUDA, then MPS, then the CPU). Both names stay importable from here.
* A network output holding NaN or infinity stops the evaluation with
  :class:`~facd.infer.tiling.NonFiniteOutputError` naming the model and the image, instead of
  scoring the black image that clamping would make of it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from facd.data.benchmark import BenchmarkItem, BenchmarkSet
from facd.errors import FacdError
from facd.infer.device import resolve_device
from facd.infer.ensemble import forward_x8
from facd.infer.tiling import NonFiniteOutputError
from facd.metrics import GrayMode, psnr_ssim_y, psnr_y_torch, ssim_y_torch

__all__ = [
    "BICUBIC",
    "evaluate",
    "forward_x8",
    "resolve_device",
    "super_resolve",
    "validate",
]

#: The name that selects the bicubic baseline instead of a network.
BICUBIC = "bicubic"


def _to_tensor(img: np.ndarray, device: torch.device) -> Tensor:
    """uint8 HxWx3 -> float32 (1, 3, H, W) in [0, 1] on ``device``."""
    t = torch.tensor(img, device=device)
    return t.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def _quantise(y: Tensor) -> Tensor:
    """Float (B, 3, H, W) in [0, 1] -> uint8, clamped, ``round(x * 255)`` half to even."""
    return (y.float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def super_resolve(
    model: nn.Module | str, lr: np.ndarray, scale: int, device: torch.device, x8: bool = False
) -> Tensor:
    """SR of one uint8 HxWx3 LR image as a uint8 (1, 3, sH, sW) tensor on ``device``."""
    if isinstance(model, str):
        from facd.data.imresize import bicubic_upsample

        sr = bicubic_upsample(lr, scale)
        return torch.tensor(sr, device=device).permute(2, 0, 1).unsqueeze(0)
    x = _to_tensor(lr, device)
    with torch.inference_mode():
        y = forward_x8(lambda t: model(t.contiguous()), x) if x8 else model(x)
    expect = (x.shape[2] * scale, x.shape[3] * scale)
    if tuple(y.shape[2:]) != expect or y.shape[1] != 3:
        raise FacdError(
            f"model output is {tuple(y.shape)} for input {tuple(x.shape)}; expected "
            f"3 channels at {expect[0]}x{expect[1]} (is the model really x{scale}?)"
        )
    if not bool(torch.isfinite(y).all()):
        # clamping would turn NaN into black pixels and a plausible-looking 7 dB score
        raise NonFiniteOutputError("model output holds NaN or infinite values")
    return _quantise(y)


def _score(
    sr: Tensor,
    items: Sequence[BenchmarkItem],
    scale: int,
    gray: GrayMode,
    use_torch: bool | None = None,
) -> list[tuple[float, float]]:
    """(PSNR, SSIM) of each image of a uint8 (B, 3, H, W) SR batch against its item's HR.

    By default the numpy metrics are used on CPU (float64 convolutions are slow in torch on
    CPU) and the batched torch twins elsewhere; both implement the same definitions.
    """
    if use_torch is None:
        use_torch = sr.device.type != "cpu"
    for item in items:  # the metrics' own check names no file: name the image here
        h, w = item.hr.shape[:2]
        if 2 * scale >= min(h, w):
            raise FacdError(
                f"{item.path or item.name}: the HR image is {w}x{h}, too small to score at x{scale} (the "
                f"benchmark protocol shaves {scale} pixels from each border); remove it from the set"
            )
    if not use_torch:
        out = []
        for img, item in zip(sr.cpu().permute(0, 2, 3, 1).numpy(), items, strict=True):
            out.append(psnr_ssim_y(img, item.hr, scale, gray))
        return out
    hr = torch.tensor(np.stack([_rgb(it.hr) for it in items]), device=sr.device)
    hr = hr.permute(0, 3, 1, 2)
    mask = torch.tensor([it.hr_is_gray for it in items], device=sr.device)
    psnr = psnr_y_torch(sr, hr, scale, hr_is_gray=mask, gray=gray).tolist()
    ssim = ssim_y_torch(sr, hr, scale, hr_is_gray=mask, gray=gray).tolist()
    return list(zip(psnr, ssim, strict=True))


def _save(folder: Path, set_name: str, scale: int, name: str, sr: Tensor) -> None:
    from facd.data.image_io import write_image

    img = sr[0].permute(1, 2, 0).cpu().numpy()
    write_image(folder / set_name / f"X{scale}" / f"{name}.png", img)


def _refuse_overwriting_the_sets(out_dir: Path, benches: list[BenchmarkSet], scale: int) -> None:
    """No SR image may be written over an HR or LR file of the sets (checked before any)."""
    from facd.fileio import refuse_overwriting_inputs
    from facd.messages import option

    outputs = [
        (f"{option('save_images')} image {p}", p)
        for b in benches
        for p in (out_dir / b.name / f"X{scale}" / f"{n}.png" for n in b.names)
    ]
    inputs = [p for b in benches for p in (*b.hr_paths, *(b.lr_path(n) for n in b.names))]
    refuse_overwriting_inputs(outputs, inputs, advice="choose another folder")


def _model_name(model: nn.Module | str) -> str:
    if isinstance(model, str):
        return model
    spec = getattr(model, "spec", None)
    return spec.describe() if spec is not None else type(model).__name__


def evaluate(
    model_or_bicubic: nn.Module | str,
    sets: Sequence[str | BenchmarkSet],
    scale: int,
    data_root: str | Path,
    device: str | torch.device = "auto",
    self_ensemble: bool = False,
    save_images: str | Path | None = None,
    progress: bool = True,
    gray: GrayMode = "native",
    model_name: str | None = None,
    on_image: Callable[[str, str, np.ndarray], None] | None = None,
) -> dict[str, Any]:
    """Mean Y-PSNR/SSIM of a network (or ``"bicubic"``) on each set, in the ``facd eval`` JSON form.

    Returns ``{"scale", "model", "gray", "self_ensemble", "sets": {set: {"psnr_y", "ssim_y",
    "images", "per_image": {name: {"psnr_y", "ssim_y"}}}}}``. A set is a name under ``data_root``
    or an opened set (e.g. a :class:`~facd.data.benchmark.SplitSet`, the validation split). All
    sets are opened (and checked) before any image is processed. A network is moved to
    ``device``; its train/eval mode is restored afterwards. ``on_image(set, name, sr)`` receives
    every SR image (uint8 HxWx3, the pixels that were measured and that ``save_images`` would
    write), e.g. to compare it with another model's output without a PNG round trip.
    """
    from tqdm import tqdm

    if gray not in ("native", "y"):
        raise FacdError(f"gray must be 'native' or 'y', got {gray!r}")
    is_bicubic = isinstance(model_or_bicubic, str)
    if is_bicubic and model_or_bicubic != BICUBIC:
        raise FacdError(f"model must be a network or {BICUBIC!r}, got {model_or_bicubic!r}")
    if not sets:
        raise FacdError("no benchmark set given")
    dev = resolve_device(device)
    benches = [_open_set(s, scale, data_root) for s in sets]
    model = model_or_bicubic
    was_training = False
    if isinstance(model, nn.Module):
        was_training = model.training
        model = model.to(dev).eval()
    out_dir = Path(save_images) if save_images is not None else None
    if out_dir is not None:
        _refuse_overwriting_the_sets(out_dir, benches, scale)
    total = sum(len(b) for b in benches)
    bar = tqdm(
        total=total, desc=f"eval x{scale}", unit="img", file=sys.stderr, disable=not progress
    )
    results: dict[str, Any] = {}
    try:
        for bench in benches:
            per_image: dict[str, dict[str, float]] = {}
            for item in bench:
                bar.set_postfix_str(f"{bench.name}/{item.name}", refresh=False)
                try:
                    sr = super_resolve(
                        model, item.lr, scale, dev, x8=self_ensemble and not is_bicubic
                    )
                except NonFiniteOutputError:
                    name = model_name or _model_name(model_or_bicubic)
                    raise NonFiniteOutputError(
                        f"model {name} produced NaN or infinite values on {bench.name}/"
                        f"{item.name}; its weights are broken (e.g. saved from a diverged "
                        "training run), so no score is reported"
                    ) from None
                ((psnr, ssim),) = _score(sr, [item], scale, gray)
                per_image[item.name] = {"psnr_y": psnr, "ssim_y": ssim}
                if out_dir is not None:
                    _save(out_dir, bench.name, scale, item.name, sr)
                if on_image is not None:
                    # contiguous, as read from a file: numpy's matmul may round a strided
                    # view differently in the last bit
                    img = np.ascontiguousarray(sr[0].permute(1, 2, 0).cpu().numpy())
                    on_image(bench.name, item.name, img)
                bar.update(1)
            results[bench.name] = {
                "psnr_y": _mean(v["psnr_y"] for v in per_image.values()),
                "ssim_y": _mean(v["ssim_y"] for v in per_image.values()),
                "images": len(per_image),
                "per_image": per_image,
            }
    finally:
        bar.close()
        if isinstance(model, nn.Module) and was_training:
            model.train()
    return {
        "scale": int(scale),
        "model": model_name or _model_name(model_or_bicubic),
        "gray": gray,
        "self_ensemble": bool(self_ensemble and not is_bicubic),
        "sets": results,
    }


def _open_set(item: str | BenchmarkSet, scale: int, data_root: str | Path) -> BenchmarkSet:
    """A set name opened under ``data_root``, or an opened set (its scale must be ``scale``)."""
    if isinstance(item, BenchmarkSet):
        if item.scale != int(scale):
            raise FacdError(f"set {item.name} is opened at x{item.scale}, not x{scale}")
        return item
    return BenchmarkSet(data_root, item, scale)


def _mean(values) -> float:
    vals = list(values)
    return math.fsum(vals) / len(vals)


def validate(
    model: nn.Module,
    bench: BenchmarkSet,
    device: str | torch.device = "auto",
    batch_size: int = 16,
    gray: GrayMode = "native",
) -> dict[str, float]:
    """Mean Y-PSNR/SSIM of ``model`` on one set, for validation during training.

    Images of equal size are run as one batch (up to ``batch_size``); the numbers are those of
    :func:`evaluate` for the set (up to float rounding of batched convolutions). The model's
    train/eval mode is restored afterwards.
    """
    dev = resolve_device(device)
    scale = bench.scale
    items = list(bench)
    groups: dict[tuple[int, ...], list[BenchmarkItem]] = {}
    for item in items:
        groups.setdefault(item.lr.shape, []).append(item)
    psnrs: list[float] = []
    ssims: list[float] = []
    was_training = model.training
    model.eval()
    try:
        for group in groups.values():
            for i in range(0, len(group), batch_size):
                chunk = group[i : i + batch_size]
                lr = torch.tensor(np.stack([it.lr for it in chunk]), device=dev)
                x = lr.permute(0, 3, 1, 2).float().div_(255.0)
                with torch.inference_mode():
                    sr = _quantise(model(x))
                for psnr, ssim in _score(sr, chunk, scale, gray):
                    psnrs.append(psnr)
                    ssims.append(ssim)
    finally:
        model.train(was_training)
    return {"psnr_y": _mean(psnrs), "ssim_y": _mean(ssims)}


def _rgb(img: np.ndarray) -> np.ndarray:
    return img if img.ndim == 3 else np.repeat(img[:, :, None], 3, axis=2)
