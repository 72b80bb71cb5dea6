"""Benchmark test sets in the EDSR layout (Set5, Set14, B100, Urban100, ...).

Layout under a data root::

    <root>/<Set>/HR/<name>.png
    <root>/<Set>/LR_bicubic/X<s>/<name>x<s>.png     (optional)

When an LR file is missing it is rebuilt from HR with MATLAB-exact
``imresize(modcrop(HR, s), 1/s, 'bicubic')`` and cached in memory (never written to disk).
HR images keep their stored channel count (Set14 ``bridge.png`` is single-channel) and are
modcropped to the scale; LR images are always HxWx3 (grey replicated) for the network.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facd.data.image_io import list_images, read_image_raw
from facd.data.imresize import bicubic_downsample, modcrop
from facd.errors import DataError

__all__ = ["BenchmarkItem", "BenchmarkSet", "available_sets"]


@dataclass(frozen=True)
class BenchmarkItem:
    """One test image: ``hr`` raw (HxW or HxWx3, modcropped) and ``lr`` uint8 HxWx3."""

    name: str
    hr: np.ndarray
    lr: np.ndarray
    hr_is_gray: bool


def available_sets(root: str | Path) -> list[str]:
    """Names of the folders under ``root`` that hold an ``HR`` subfolder, sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "HR").is_dir())


def _replicate(img: np.ndarray) -> np.ndarray:
    return img if img.ndim == 3 else np.repeat(img[:, :, None], 3, axis=2)


class BenchmarkSet:
    """The images of one benchmark set at one scale, in file-name order.

    Indexing and iteration yield :class:`BenchmarkItem`. Files are read lazily; LR images
    rebuilt from HR are cached in memory, so a second pass over the set is cheap.
    """

    def __init__(self, root: str | Path, name: str, scale: int) -> None:
        if int(scale) != scale or scale < 1:
            raise DataError(f"scale must be a positive integer, got {scale!r}")
        self.root = Path(root)
        self.name = name
        self.scale = int(scale)
        self.folder = self.root / name
        hr_dir = self.folder / "HR"
        if not hr_dir.is_dir():
            if not self.root.is_dir():
                raise DataError(
                    f"{self.root}: data root not found (set --data-root or FACD_DATA_ROOT)"
                )
            found = ", ".join(available_sets(self.root)) or "none"
            raise DataError(
                f"{hr_dir}: benchmark set {name!r} not found (sets under {self.root}: {found})"
            )
        self.hr_paths = list_images(hr_dir)
        self.lr_dir = self.folder / "LR_bicubic" / f"X{self.scale}"
        self._lr_cache: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.hr_paths)

    def __repr__(self) -> str:
        return f"BenchmarkSet({self.name!r}, x{self.scale}, {len(self)} images)"

    @property
    def names(self) -> list[str]:
        return [p.stem for p in self.hr_paths]

    def lr_path(self, name: str) -> Path:
        """Where the stored LR file of ``name`` would be (it may not exist)."""
        return self.lr_dir / f"{name}x{self.scale}.png"

    def _load_lr(self, name: str, hr_full: np.ndarray) -> np.ndarray:
        """Stored-channel LR: the file if present, else bicubic from HR (cached)."""
        if name in self._lr_cache:
            return self._lr_cache[name]
        path = self.lr_path(name)
        if path.is_file():
            lr = read_image_raw(path)
        else:
            lr = bicubic_downsample(hr_full, self.scale)
            self._lr_cache[name] = lr
        return lr

    def __getitem__(self, index: int) -> BenchmarkItem:
        path = self.hr_paths[index]
        hr_full = read_image_raw(path)
        if hr_full.shape[0] < self.scale or hr_full.shape[1] < self.scale:
            h, w = hr_full.shape[:2]
            raise DataError(f"{path}: image of size {w}x{h} is smaller than scale {self.scale}")
        hr = modcrop(hr_full, self.scale)
        lr = self._load_lr(path.stem, hr_full)
        expect = (hr.shape[0] // self.scale, hr.shape[1] // self.scale)
        if lr.shape[:2] != expect:
            raise DataError(
                f"{self.lr_path(path.stem)}: LR is {lr.shape[1]}x{lr.shape[0]}, expected "
                f"{expect[1]}x{expect[0]} for HR {path.name} at x{self.scale}"
            )
        return BenchmarkItem(
            name=path.stem,
            hr=np.ascontiguousarray(hr),
            lr=np.ascontiguousarray(_replicate(lr)),
            hr_is_gray=hr.ndim == 2,
        )

    def __iter__(self) -> Iterator[BenchmarkItem]:
        for i in range(len(self)):
            yield self[i]
