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
from pathlib import Path

import numpy as np
import torch

from facd.data.image_io import list_images, read_image, write_image
from facd.data.imresize import bicubic_downsample, modcrop
from facd.errors import DataError


def cache_root() -> Path:
    return Path(os.environ.get("FACD_CACHE", Path.home() / ".cache" / "facd"))


def load_pair(path: Path, scale: int, use_cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(HR modcropped, LR) uint8 HxWx3 arrays for one image."""
    raw = path.read_bytes()
    hr = modcrop(read_image(path), scale)
    key = hashlib.sha1(raw).hexdigest()
    cached = cache_root() / "lr" / f"{key}_x{scale}.png"
    if use_cache and cached.is_file():
        try:
            lr = read_image(cached)
            if lr.shape == (hr.shape[0] // scale, hr.shape[1] // scale, 3):
                return hr, lr
        except DataError:
            pass  # a damaged cache entry is rebuilt below
    lr = bicubic_downsample(hr, scale)
    if use_cache:
        with contextlib.suppress(OSError):  # the cache is an optimisation only
            write_image(cached, lr)
    return hr, lr


class TrainPatches(torch.utils.data.Dataset):
    """Item ``t`` is the batch of iteration ``t``: (lr, hr) float tensors in [0, 1].

    ``sample_slice`` selects this process's share of the global batch (distributed training).
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
    ) -> None:
        self.paths: list[Path] = []
        for d in dirs:
            self.paths.extend(list_images(d))
        if not self.paths:
            raise DataError(f"no training images in {', '.join(map(str, dirs))}")
        self.scale, self.patch, self.batch_size = scale, patch_size, batch_size
        self.iterations, self.seed, self.augment = iterations, seed, augment
        self.sample_slice = sample_slice or slice(0, batch_size)
        pairs = [load_pair(p, scale, use_cache) for p in self.paths]
        need = patch_size * scale
        kept = []
        for path, pair in zip(self.paths, pairs, strict=True):
            hr = pair[0]
            if hr.shape[0] >= need and hr.shape[1] >= need:
                kept.append((path, pair))
            elif small_images == "error":
                raise DataError(
                    f"{path}: image is {hr.shape[1]}x{hr.shape[0]}, smaller than the HR patch "
                    f"{need}x{need} (data.patch_size {patch_size} x scale {scale}); remove it, "
                    "lower data.patch_size or set data.small_images=skip"
                )
        if not kept:
            raise DataError(
                f"no training image is at least {need}x{need} pixels in {', '.join(map(str, dirs))}"
            )
        self.skipped = len(self.paths) - len(kept)
        self.paths = [k[0] for k in kept]
        self.pairs = [k[1] for k in kept]

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
