"""The numbers the report's figures show (:mod:`facd.reproduce.figures` draws them).

* :func:`claim_points`: per claim ``a - b``, the paired difference of each seed on the mean
  over the evaluation sets, their mean and its 95 % Student-t interval (``Diff.ci95``, two or
  more seeds), and the paper's difference.
* :func:`curve_differences`: per row, its validation Y-PSNR minus the reference row's at the
  same iteration, paired by seed: the mean, min and max over the seeds.
* :func:`choose_crops`: two models super-resolve benchmark images exactly as the evaluation
  does (:class:`BenchmarkSet` LR, :func:`facd.evaluate.super_resolve`); a square window slides
  over each image inside the ``shave = scale`` border, and on each image the window where the
  two models' mean squared error on Y (the metrics' plane) differs most, ``|MSE_a - MSE_b|``,
  is kept (:func:`facd.compare.best_window`); the K images whose windows differ most are
  chosen. An absolute error gap, not a PSNR gap, is ranked: a PSNR gap is largest on flat crops
  where both models are nearly exact and nothing differs to the eye.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from facd.compare import best_window, psnr_gap
from facd.errors import FacdError
from facd.reproduce.stats import mean

if TYPE_CHECKING:
    from torch import nn

    from facd.reproduce.reportspec import ReportClaim
    from facd.reproduce.results import Results

__all__ = [
    "ClaimPoints",
    "CropChoice",
    "CurveBand",
    "choose_crops",
    "claim_points",
    "curve_differences",
    "hr_path",
]


@dataclass(frozen=True)
class ClaimPoints:
    """What one claim panel draws: the paired differences ``a - b`` of each seed (mean over
    the evaluation sets), their mean, its 95 % t-interval (None below two seeds) and the
    paper's difference."""

    a: str
    b: str
    title: str
    text: str
    metric: str
    seeds: tuple[int, ...]
    values: tuple[float, ...]
    mean: float
    ci: tuple[float, float] | None
    paper: float | None

    @property
    def n(self) -> int:
        return len(self.values)


def claim_points(
    res: Results,
    claims: Sequence[ReportClaim],
    paper_diffs: Sequence[float | None] | None = None,
) -> list[ClaimPoints]:
    """The claims that can be drawn, in order: both rows have results and share a seed (the
    others are left out). ``paper_diffs[i]`` is claim ``i``'s paper difference, or None."""
    out = []
    for i, claim in enumerate(claims):
        a, b = claim.rows
        if not (res.has(a) and res.has(b)):
            continue
        d = res.diff(a, b, None, claim.metric)
        if d is None or not all(math.isfinite(v) for v in d.values):
            continue
        paper = paper_diffs[i] if paper_diffs is not None and i < len(paper_diffs) else None
        out.append(
            ClaimPoints(
                a,
                b,
                f"{res.proto.label(a)} - {res.proto.label(b)}",
                claim.text,
                claim.metric,
                d.seeds,
                d.values,
                d.mean,
                d.ci95(),
                None if paper is None else float(paper),
            )
        )
    return out


@dataclass(frozen=True)
class CurveBand:
    """One row's validation curve minus the reference row's, paired by seed: at each
    iteration both curves hold, the mean, min and max over the seeds and how many there are."""

    row: str
    label: str
    seeds: tuple[int, ...]
    iterations: tuple[float, ...]
    mean: tuple[float, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    n: tuple[int, ...]


def _curve(doc: dict) -> dict[float, float]:
    out = {}
    for point in doc.get("curve") or []:
        it, value = point[0], point[1]
        if isinstance(value, (int, float)) and math.isfinite(value):
            out[it] = float(value)
    return out


def curve_differences(res: Results, reference: str) -> list[CurveBand]:
    """One band per row (other than ``reference``, in protocol order) whose curves share an
    iteration with the reference's curve of the same seed; the others are left out, and so
    are rows trained for another fraction of the schedule (a B/2 row's lr falls at other
    iterations: its curves are in the budget and lambda figures)."""
    ref_row = next((r for r in res.proto.rows if r.name == reference), None)
    if ref_row is None:
        return []
    ref = {seed: _curve(doc) for seed, doc in res.row_runs(ref_row).items()}
    out = []
    for row in res.proto.rows:
        if row.name == reference or row.skip or row.schedule != ref_row.schedule:
            continue
        per_it: dict[float, list[float]] = {}
        seeds = set()
        for seed, doc in res.row_runs(row).items():
            base = ref.get(seed)
            if not base:
                continue
            for it, value in _curve(doc).items():
                if it in base:
                    per_it.setdefault(it, []).append(value - base[it])
                    seeds.add(seed)
        if not per_it:
            continue
        its = sorted(per_it)
        out.append(
            CurveBand(
                row.name,
                res.proto.label(row.name),
                tuple(sorted(seeds)),
                tuple(its),
                tuple(mean(per_it[i]) for i in its),
                tuple(min(per_it[i]) for i in its),
                tuple(max(per_it[i]) for i in its),
                tuple(len(per_it[i]) for i in its),
            )
        )
    return out


class CropChoice(NamedTuple):
    """A crop where two models differ most: ``(set, image, x, y, w, h)`` in modcropped HR
    pixels, ``diff`` the crop's Y-PSNR of the first model minus the second's (dB), and
    ``mse_gap`` = MSE_a - MSE_b on the crop (Y, 0..255 squared), whose absolute value ranked it."""

    set: str
    image: str
    x: int
    y: int
    w: int
    h: int
    diff: float
    mse_gap: float


def choose_crops(
    models: Sequence[tuple[str, str | Path | nn.Module]],
    data_root: str | Path,
    scale: int,
    *,
    sets: Sequence[str] = ("Set5", "Set14"),
    max_images: int = 20,
    size: int = 64,
    stride: int | None = None,
    k: int = 3,
    device: str = "cpu",
) -> list[CropChoice]:
    """The ``k`` crops, on ``k`` different images, where the first two ``models`` differ most.

    ``models`` are ``(label, weights file or network)``; only the first two are measured.
    Each of the first ``max_images`` images of each set is super-resolved by both, from the
    evaluation's LR input (:class:`~facd.data.benchmark.BenchmarkSet`,
    :func:`facd.evaluate.super_resolve`); a ``size`` x ``size`` HR window moves in steps of
    ``stride`` (default ``size // 2``) inside the ``scale``-pixel border; each image keeps its
    window with the largest ``|MSE_a - MSE_b|`` on Y, and the ``k`` images whose windows have
    the largest are returned, largest first. Images smaller than a window are passed over.
    """
    import torch

    from facd.archs.io import load_model
    from facd.data.benchmark import BenchmarkSet
    from facd.evaluate import resolve_device, super_resolve

    if len(models) < 2:
        raise FacdError(f"choose_crops compares two models, got {len(models)}")
    if size < 1 or k < 1 or max_images < 1:
        raise FacdError(f"size, k and max_images must be >= 1, got {size}, {k}, {max_images}")
    step = stride or max(1, size // 2)
    dev = resolve_device(device)
    nets = []
    for _, ref in models[:2]:
        net = ref if isinstance(ref, torch.nn.Module) else load_model(str(ref), scale)[0]
        nets.append(net.to(dev).eval())

    def sr(net, lr: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(super_resolve(net, lr, scale, dev)[0].permute(1, 2, 0).cpu())

    found: list[CropChoice] = []
    for set_name in sets:
        bench = BenchmarkSet(data_root, set_name, scale)
        for index in range(min(len(bench), max_images)):
            item = bench[index]
            best = best_window(
                item.hr, sr(nets[0], item.lr), sr(nets[1], item.lr), size, step, scale
            )
            if best is None:
                continue
            x, y, mse_a, mse_b = best
            gap = mse_a - mse_b
            found.append(
                CropChoice(set_name, item.name, x, y, size, size, psnr_gap(mse_a, mse_b), gap)
            )
    found.sort(key=lambda c: -abs(c.mse_gap))
    return found[:k]


def hr_path(data_root: str | Path, set_name: str, image: str, scale: int) -> Path:
    """The HR file of ``image`` in the benchmark set ``set_name``."""
    from facd.data.benchmark import BenchmarkSet

    bench = BenchmarkSet(data_root, set_name, scale)
    return next(p for p in bench.hr_paths if p.stem == image)
