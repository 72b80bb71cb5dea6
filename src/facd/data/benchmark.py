"""Benchmark test sets in the EDSR layout (Set5, Set14, B100, Urban100, ...).

Layout under a data root::

    <root>/<Set>/HR/<name>.png
    <root>/<Set>/LR_bicubic/X<s>/<name>x<s>.png     (optional)

When an LR file is missing it is rebuilt from HR with MATLAB-exact
``imresize(modcrop(HR, s), 1/s, 'bicubic')`` and cached in memory (never written to disk).
A set is scored on its HR files: stored LR files without an HR file are left out, with one
warning that counts them and names the first three.
HR images keep their stored channel count (Set14 ``bridge.png`` is single-channel) and are
modcropped to the scale; LR images are always HxWx3 (grey replicated) for the network.

:class:`SplitSet` is a validation split held out of the training folders (a list file such as
``configs/splits/val291.txt``): the same items, LR always MATLAB bicubic of the modcropped HR
(the training folders hold no LR files), so it goes through the same evaluation functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facd.data.image_io import IMAGE_EXTENSIONS, list_images, read_image_raw
from facd.data.imresize import bicubic_downsample, modcrop
from facd.errors import DataError
from facd.messages import warn

__all__ = ["BenchmarkItem", "BenchmarkSet", "SplitSet", "available_sets"]


@dataclass(frozen=True)
class BenchmarkItem:
    """One test image: ``hr`` raw (HxW or HxWx3, modcropped) and ``lr`` uint8 HxWx3."""

    name: str
    hr: np.ndarray
    lr: np.ndarray
    hr_is_gray: bool
    path: str = ""  # the HR file, for messages


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
                    f"{self.root}: data root not found (facd eval: --data-root PATH or "
                    "FACD_DATA_ROOT; facd train: --set val.data_root=PATH, or --set val.sets=[] "
                    "to train without validation)"
                )
            found = ", ".join(available_sets(self.root)) or "none"
            raise DataError(
                f"{hr_dir}: benchmark set {name!r} not found (sets under {self.root}: {found})"
            )
        self.hr_paths = list_images(hr_dir)
        self.lr_dir = self.folder / "LR_bicubic" / f"X{self.scale}"
        self._lr_cache: dict[str, np.ndarray] = {}
        self.unscored_lr = self._lr_without_hr()
        if self.unscored_lr:
            shown = ", ".join(p.name for p in self.unscored_lr[:3])
            more = ", ..." if len(self.unscored_lr) > 3 else ""
            warn(
                f"{self.lr_dir}: {len(self.unscored_lr)} LR image(s) have no HR image in "
                f"{hr_dir} and are not scored ({shown}{more}); {name} is scored on its "
                f"{len(self)} HR image(s): restore the missing HR files for comparable numbers"
            )

    def _lr_without_hr(self) -> list[Path]:
        """Stored LR images (``<name>x<s>.*``) whose HR image is missing: the set is scored on
        its HR files, so these are left out, and a warning says so (not an error: the numbers
        of the images present are right, and a user may have trimmed a set on purpose)."""
        if not self.lr_dir.is_dir():
            return []
        expected = {f"{stem}x{self.scale}" for stem in self.names}
        return sorted(
            p
            for p in self.lr_dir.iterdir()
            if p.suffix.lower() in IMAGE_EXTENSIONS
            and not p.name.startswith(".")
            and p.stem not in expected
            and p.is_file()
        )

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
            path=str(path),
        )

    def __iter__(self) -> Iterator[BenchmarkItem]:
        for i in range(len(self)):
            yield self[i]


class SplitSet(BenchmarkSet):
    """The images a list file names, read from training folders: a validation split.

    ``list_file`` holds one entry a line (``#`` comments), each the end of an image's path,
    e.g. ``T91/HR/t13.bmp`` (the format of ``data.exclude``); an image of ``dirs`` whose path
    ends with an entry (whole path components) belongs to the split. Items come in the list's
    order. Every entry must match exactly one image: a missing one is a :class:`DataError`
    naming the entry and the folders searched. The set is named after the list file's stem
    (``val291``). LR images are MATLAB bicubic of the modcropped HR, cached in memory.
    """

    def __init__(
        self, list_file: str | Path, dirs: list[str] | list[Path], scale: int, name: str = ""
    ) -> None:
        from facd.data.patches import listed_in, read_name_list

        if int(scale) != scale or scale < 1:
            raise DataError(f"scale must be a positive integer, got {scale!r}")
        if not Path(list_file).is_file():
            raise DataError(
                f"val.split: cannot read the list file {list_file}; in a config file the path is "
                "relative to that file's folder (with --set, to the current directory)"
            )
        entries = read_name_list(list_file)
        if not entries:
            raise DataError(f"val.split: the list file {list_file} names no image")
        found: list[Path] = []
        for d in dirs:
            found.extend(list_images(d))
        paths = []
        for entry in entries:
            hits = [q for q in found if listed_in(q, (entry,))]
            if len(hits) != 1:
                where = ", ".join(map(str, dirs))
                what = "no image" if not hits else f"{len(hits)} images"
                raise DataError(
                    f"val.split: entry {entry!r} of {list_file} matches {what} in the training "
                    f"folders ({where}); each entry must end the path of exactly one image"
                )
            paths.append(hits[0])
        self.root = Path(list_file).parent
        self.name = name or Path(list_file).stem
        self.scale = int(scale)
        self.folder = self.root
        self.hr_paths = paths
        self.lr_dir = self.root  # unused: the LR image is always rebuilt from HR
        self._lr_cache = {}

    def _load_lr(self, name: str, hr_full: np.ndarray) -> np.ndarray:
        """MATLAB bicubic of the HR image (cached in memory); never a file."""
        if name not in self._lr_cache:
            self._lr_cache[name] = bicubic_downsample(hr_full, self.scale)
        return self._lr_cache[name]

    def __repr__(self) -> str:
        return f"SplitSet({self.name!r}, x{self.scale}, {len(self)} images)"
