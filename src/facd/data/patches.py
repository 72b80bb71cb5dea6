"""Training pairs from folders of HR images.

The LR image is ``bicubic_downsample`` (MATLAB-exact) of the HR image, computed once per image
and scale and cached on disk under ``$FACD_CACHE`` (default ``~/.cache/facd``), keyed by the
SHA-1 of the HR file's bytes, so a renamed file is not recomputed and an edited file is.

Sampling is a pure function of ``(seed, iteration, sample index)``: the patch of sample i at
iteration t is the same whatever process, worker or resume produced it. That makes resumed and
distributed runs see exactly the batches of an uninterrupted single-process run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facd.data.image_io import list_images, read_image, write_image
from facd.data.imresize import bicubic_downsample, modcrop
from facd.errors import DataError, FacdError


def cache_root() -> Path:
    return Path(os.environ.get("FACD_CACHE", Path.home() / ".cache" / "facd"))


def _cache_file(raw: bytes, scale: int) -> Path:
    return cache_root() / "lr" / f"{hashlib.sha1(raw).hexdigest()}_x{scale}.png"


def _read_cached(cached: Path, hr: np.ndarray, scale: int) -> np.ndarray | None:
    """The cached LR image if it exists, decodes and has the right size; else None."""
    if not cached.is_file():
        return None
    try:
        lr = read_image(cached)
    except DataError:
        return None  # a damaged cache entry is rebuilt
    return lr if lr.shape == (hr.shape[0] // scale, hr.shape[1] // scale, 3) else None


def _build_lr(hr: np.ndarray, scale: int, cached: Path | None) -> np.ndarray:
    lr = bicubic_downsample(hr, scale)
    if cached is not None:
        with contextlib.suppress(FacdError):  # the cache is an optimisation only
            write_image(cached, lr)  # atomic: concurrent ranks never see half a file
    return lr


def read_name_list(path: str | Path | None, key: str = "data.exclude") -> tuple[str, ...]:
    """Entries of an image list file (``data.exclude``, ``val.split``): one path a line, ``#``
    comments; ``key`` names the config key in the error for an unreadable file."""
    if path is None:
        return ()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        raise DataError(
            f"{key}: cannot read the list file {path}; in a config file the path is "
            "relative to that file's folder (with --set, to the current directory), or remove "
            "the key"
        ) from None
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return tuple(line.strip("/") for line in lines if line)


def listed_in(path: Path, entries: tuple[str, ...]) -> bool:
    """True when ``path`` ends with one of the entries (whole path components)."""
    full = "/" + path.as_posix()
    return any(full.endswith("/" + e) for e in entries)


def training_image_paths(dirs: Sequence[str | Path], exclude: str | Path | None) -> list[Path]:
    """The training images of ``data.train_dirs`` less those ``data.exclude`` lists, in order."""
    paths: list[Path] = []
    for d in dirs:
        if Path(d).is_file():
            raise DataError(
                f"{d}: is a file; training images are given as folders (data.train_dirs), "
                f"e.g. its folder {Path(d).parent}"
            )
        paths.extend(list_images(d))
    left_out = read_name_list(exclude)
    return [q for q in paths if not listed_in(q, left_out)]


def too_small_message(path: Path, width: int, height: int, patch_size: int, scale: int) -> str:
    need = patch_size * scale
    return (
        f"{path}: image is {width}x{height}, smaller than the HR patch {need}x{need} "
        f"(data.patch_size {patch_size} x scale {scale}); remove it, lower data.patch_size or "
        "set data.small_images=skip"
    )


def _main_process() -> bool:
    """Rank 0 of a distributed run (``RANK`` as set by torchrun), or not distributed."""
    return os.environ.get("RANK", "0") == "0"


class TrainPatches(torch.utils.data.Dataset):
    """Item ``t`` is the batch of iteration ``t``: (lr, hr) float tensors in [0, 1].

    ``sample_slice`` selects this process's share of the global batch (distributed training).

    Every image is checked before any LR image is computed: an image whose LR version (HR
    cropped to a multiple of ``scale``, divided by ``scale``) is smaller than ``patch_size``
    stops with an error naming the file (the size shown is the file's), or, with
    ``small_images="skip"``, is left out (``skipped_paths``). The check is the same with and
    without the cache and in every process of a distributed run, so all ranks keep the same
    images. LR images missing from the cache are computed after one line on stderr that says
    so, with a progress bar (``progress=False``: no bar). Only rank 0 of a distributed run
    (``RANK``) shows either; nothing is shown when every image is cached or ``use_cache`` is off.
    An image that cannot be read as 8-bit RGB (a 16-bit PNG, a damaged file) stops with its
    reader's error, or, with ``unsupported_images="skip"``, is left out (``unsupported_paths``).
    """

    def __init__(
        self,
        dirs: list[str | Path],
        scale: int,
        patch_size: int,
        batch_size: int,
        iterations: int,
        seed: int = 0,
        augment: bool = True,
        sample_slice: slice | None = None,
        use_cache: bool = True,
        small_images: str = "error",
        progress: bool | None = None,
        exclude: str | Path | None = None,
        unsupported_images: str = "error",
    ) -> None:
        paths = training_image_paths(dirs, exclude)
        if not paths:
            raise DataError(f"no training images in {', '.join(map(str, dirs))}")
        self.scale, self.patch, self.batch_size = scale, patch_size, batch_size
        self.iterations, self.seed, self.augment = iterations, seed, augment
        self.sample_slice = sample_slice or slice(0, batch_size)
        need = patch_size * scale
        kept: list[tuple[Path, np.ndarray, Path | None]] = []
        self.skipped_paths: list[Path] = []
        self.unsupported_paths: list[Path] = []
        for path in paths:
            try:
                img = read_image(path)
            except DataError as err:
                if unsupported_images == "error":
                    raise DataError(f"{err} (or set data.unsupported_images=skip)") from None
                self.unsupported_paths.append(path)
                continue
            raw = path.read_bytes()
            h, w = img.shape[:2]
            if h // scale < patch_size or w // scale < patch_size:  # LR smaller than the patch
                if small_images == "error":
                    raise DataError(too_small_message(path, w, h, patch_size, scale))
                self.skipped_paths.append(path)
                continue
            kept.append((path, modcrop(img, scale), _cache_file(raw, scale) if use_cache else None))
        if not kept:
            raise DataError(
                f"no training image is at least {need}x{need} pixels in {', '.join(map(str, dirs))}"
            )
        lrs = [_read_cached(c, hr, scale) if c is not None else None for _, hr, c in kept]
        todo = [i for i, lr in enumerate(lrs) if lr is None]
        announce = use_cache and bool(todo) and _main_process()
        bar = announce and progress is not False
        if announce:
            print(
                f"data: building the x{scale} LR cache for {len(todo)} of {len(kept)} training "
                f"image(s) in {cache_root() / 'lr'} (once; later runs read it)",
                file=sys.stderr,
                flush=True,
            )
        for i in tqdm(todo, desc="LR cache", unit="img", file=sys.stderr, disable=not bar):
            lrs[i] = _build_lr(kept[i][1], scale, kept[i][2])
        self.skipped = len(self.skipped_paths)
        self.paths = [k[0] for k in kept]
        self.pairs: list[tuple[np.ndarray, np.ndarray]] = []
        for k, lr in zip(kept, lrs, strict=True):
            assert lr is not None  # every image was read from the cache or built above
            self.pairs.append((k[1], lr))

    def __len__(self) -> int:
        return self.iterations

    def sample(self, iteration: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.Generator(np.random.PCG64([self.seed, iteration, index]))
        hr, lr = self.pairs[int(rng.integers(len(self.pairs)))]
        p, s = self.patch, self.scale
        y = int(rng.integers(lr.shape[0] - p + 1))
        x = int(rng.integers(lr.shape[1] - p + 1))
        lr_patch = lr[y : y + p, x : x + p]
        hr_patch = hr[y * s : (y + p) * s, x * s : (x + p) * s]
        if self.augment:
            hflip, vflip, rot = rng.integers(2, size=3)
            lr_patch, hr_patch = (_augment(a, hflip, vflip, rot) for a in (lr_patch, hr_patch))
        return lr_patch, hr_patch

    def __getitem__(self, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = range(*self.sample_slice.indices(self.batch_size))
        samples = [self.sample(iteration, i) for i in idx]
        lr = np.stack([s[0] for s in samples])
        hr = np.stack([s[1] for s in samples])
        return _to_tensor(lr), _to_tensor(hr)


def _augment(a: np.ndarray, hflip: int, vflip: int, rot: int) -> np.ndarray:
    if hflip:
        a = a[:, ::-1]
    if vflip:
        a = a[::-1]
    if rot:
        a = a.transpose(1, 0, 2)
    return a


def _to_tensor(batch: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2))).float().div_(255.0)
