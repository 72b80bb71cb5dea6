"""The Python inference API: ``facd.load(...)`` returns an :class:`Upscaler`.

Example::

    import facd
    from PIL import Image

    up = facd.load("edsr_x4.safetensors")          # or "edsr-s" with scale=4 (untrained)
    print(up.description)                          # arch, scale, parameters, ...
    sr = up(Image.open("photo.png"))               # PIL in, PIL out
    sr.save("photo_x4.png")

Accepted images and what comes back (all outputs are clamped to [0, 1] / 0..255):

* ``PIL.Image``: RGB -> RGB; grey (L) -> grey; RGBA/LA -> RGBA/LA. EXIF orientation is applied
  first, so the result is upright like the CLI's.
* numpy uint8 HxWx3 -> uint8; HxW -> HxW; HxWx4 -> HxWx4 (alpha upscaled with bicubic).
* numpy float in [0, 1], same layouts -> float of the same dtype.
* torch float tensor (3, H, W) or (N, 3, H, W) in [0, 1] -> a tensor of the same layout, dtype
  and device.

Grey inputs are replicated to RGB for the network and the RGB output is turned back to grey
with MATLAB ``rgb2gray`` (the conversion the evaluation uses for grey images). Alpha channels
are upscaled with MATLAB bicubic, RGB with the network.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from facd.archs.registry import Tiling
from facd.archs.spec import ArchSpec
from facd.errors import DataError, FacdError
from facd.infer.device import (
    resolve_device,
    resolve_precision,
    use_channels_last,
)
from facd.infer.ensemble import forward_x8
from facd.infer.tiling import (
    DEFAULT_OVERLAP,
    default_tail_tile,
    default_tile,
    tail_margin,
    tile_grid,
    tiled_forward,
)

__all__ = ["ModelDescription", "SizeRequirements", "Upscaler", "load"]


@dataclass(frozen=True)
class SizeRequirements:
    """Input sizes the network accepts: at least ``minimum`` and a multiple of ``multiple_of``."""

    minimum: int = 1
    multiple_of: int = 1

    def check(self, height: int, width: int) -> None:
        for name, n in (("height", height), ("width", width)):
            if n < self.minimum or n % self.multiple_of:
                raise DataError(
                    f"image {name} {n} is not allowed: need >= {self.minimum} and a multiple "
                    f"of {self.multiple_of}"
                )


@dataclass(frozen=True)
class ModelDescription:
    """What an :class:`Upscaler` runs.

    ``supports_half``: the architecture gives correct results in fp16/bf16 (whether the device
    runs half precision natively is checked separately, see ``facd.infer.device``).
    ``receptive_margin``: the declared tile overlap (LR pixels), from which EDSR tiling is
    exact; ``exact_tiling`` is False for RCAN (global channel attention) and SwinIR (windows
    laid out per tile), whose tiles are approximate (``tiling`` gives the reason and, for
    SwinIR, the tolerance the tests hold it to).
    """

    arch: str
    scale: int
    channels: int
    supports_half: bool
    size_requirements: SizeRequirements
    parameters: int
    spec: ArchSpec
    receptive_margin: int
    exact_tiling: bool
    tiling: Tiling

    def __str__(self) -> str:
        if self.exact_tiling:
            exact = f"exact, receptive margin {self.receptive_margin} LR px"
        else:
            exact = f"approximate ({self.tiling.reason}), margin {self.receptive_margin} LR px"
        return f"{self.spec.describe()}; {self.parameters:,} parameters; tiling {exact}"


def describe(spec: ArchSpec, model: nn.Module) -> ModelDescription:
    from facd.complexity import count_params

    decl = spec.declaration
    info = decl.tiling(spec)
    return ModelDescription(
        arch=spec.arch,
        scale=spec.scale,
        channels=3,
        supports_half=decl.supports_half(spec),
        size_requirements=SizeRequirements(),
        parameters=count_params(model)[0],
        spec=spec,
        receptive_margin=info.margin,
        exact_tiling=info.exact,
        tiling=info,
    )


# ----------------------------------------------------------------------------- writers


def _gray_weights(device: torch.device) -> Tensor:
    from facd.metrics import GRAY_WEIGHTS

    return torch.tensor(GRAY_WEIGHTS, dtype=torch.float64, device=device).view(3, 1, 1)


def _uint8_writer(view: np.ndarray, gray: bool) -> Callable[[int, int, Tensor], None]:
    """Write (3, h, w) float blocks into a uint8 HxWx3 (or, if ``gray``, HxW) view, quantised
    like the evaluation: clamp to [0, 1], ``round(x * 255)``."""

    def write(y: int, x: int, block: Tensor) -> None:
        q = block.float().clamp(0.0, 1.0).mul_(255.0).round_()  # one new tensor
        if gray:  # MATLAB rgb2gray on uint8: weighted sum rounded half up
            g = (q.double() * _gray_weights(q.device)).sum(0)
            out = torch.floor(g + 0.5).clamp(0, 255).to(torch.uint8).cpu().numpy()
        else:
            out = q.to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        view[y : y + out.shape[0], x : x + out.shape[1]] = out

    return write


UNIT_RANGE_LIMIT = 1.5  # above this, float pixels are 0..255 values, not [0, 1] (no rounding slack)


def _check_float_pixels(bad: int, peak: float, what: str) -> None:
    """Refuse ``bad`` NaN or infinite float pixels (the network would return NaN, which would
    be blamed on its weights), and float pixels on the 0..255 scale (``peak`` above 1.5):
    they would be clipped to 1.0, silently white."""
    if bad:
        raise DataError(
            f"{what} holds {bad} NaN or infinite value(s), which the network cannot upscale; "
            "replace them first (numpy.nan_to_num or torch.nan_to_num)"
        )
    if peak > UNIT_RANGE_LIMIT:
        raise DataError(
            f"{what} values go up to {peak:g}, but float input must lie in [0, 1]: divide it by "
            "255, or pass uint8 pixels"
        )


def _float_writer(view: np.ndarray, gray: bool) -> Callable[[int, int, Tensor], None]:
    def write(y: int, x: int, block: Tensor) -> None:
        b = block.float().clamp(0.0, 1.0)
        if gray:
            out = (b.double() * _gray_weights(b.device)).sum(0).cpu().numpy()
        else:
            out = b.permute(1, 2, 0).cpu().numpy()
        view[y : y + out.shape[0], x : x + out.shape[1]] = out

    return write


def _tensor_writer(buf: Tensor, clamp: bool = True) -> Callable[[int, int, Tensor], None]:
    def write(y: int, x: int, block: Tensor) -> None:
        buf[:, y : y + block.shape[1], x : x + block.shape[2]] = (
            block.clamp(0.0, 1.0) if clamp else block
        )

    return write


# ----------------------------------------------------------------------------- upscaler


class Upscaler:
    """A network ready for inference on one device, with tiling and precision options.

    Options given here are defaults; each call may override them with keywords
    (``tile``, ``overlap``, ``batch``, ``precision``, ``self_ensemble``, ``progress``,
    ``tail_tile``). ``tile`` and ``overlap`` are in LR pixels; ``tile=None`` is the default
    (512 for 64-channel networks, see :func:`facd.infer.tiling.default_tile`) and ``tile=0``
    runs the whole image at once. ``overlap="exact"`` is the receptive margin, from which EDSR
    tiles reproduce the whole-image output. ``tail_tile`` (LR pixels, default 512 output
    pixels; 0 = off) splits the upsampler's work on each tile into exact sub-tiles.
    """

    def __init__(
        self,
        model: nn.Module,
        spec: ArchSpec,
        device: str | torch.device = "auto",
        *,
        precision: str = "fp32",
        tile: int | None = None,
        overlap: int | str = DEFAULT_OVERLAP,
        batch: int = 1,
        self_ensemble: bool = False,
        channels_last: bool | None = None,
        progress: bool = False,
        tail_tile: int | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.spec = spec
        self.model = model.eval().float().to(self.device)  # in place, like nn.Module.to
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.channels_last = (
            use_channels_last(self.device) if channels_last is None else bool(channels_last)
        )
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.description = describe(spec, model)
        self._models: dict[torch.dtype, nn.Module] = {torch.float32: self.model}
        self.options: dict[str, Any] = {}
        self.options = self._options(
            dict(
                precision=precision,
                tile=tile,
                overlap=overlap,
                batch=batch,
                self_ensemble=self_ensemble,
                progress=progress,
                tail_tile=tail_tile,
            )
        )

    @property
    def scale(self) -> int:
        return self.spec.scale

    def __repr__(self) -> str:
        return f"Upscaler({self.description}, device={self.device}, options={self.options})"

    # -- options

    def _options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        opts = dict(self.options)
        unknown = sorted(set(overrides) - self._OPTION_NAMES)
        if unknown:
            raise FacdError(f"unknown option(s) {unknown}; known: {sorted(self._OPTION_NAMES)}")
        opts.update({k: v for k, v in overrides.items() if v is not None})
        if opts.get("tile") is None:
            opts["tile"] = default_tile(self.spec)
        if opts.get("tail_tile") is None:
            opts["tail_tile"] = default_tail_tile(self.spec.scale)
        if opts["overlap"] == "exact":
            opts["overlap"] = self.description.receptive_margin
        for key in ("tile", "overlap", "batch", "tail_tile"):
            if isinstance(opts[key], bool) or not isinstance(opts[key], (int, np.integer)):
                raise FacdError(f"{key} must be an integer, got {opts[key]!r}")
            opts[key] = int(opts[key])
        if min(opts["tile"], opts["overlap"], opts["tail_tile"]) < 0 or opts["batch"] < 1:
            raise FacdError(
                f"need tile, overlap, tail_tile >= 0 and batch >= 1; got tile={opts['tile']}, "
                f"overlap={opts['overlap']}, tail_tile={opts['tail_tile']}, batch={opts['batch']}"
            )
        opts["dtype"] = resolve_precision(opts["precision"], self.device)
        return opts

    _OPTION_NAMES = frozenset(
        ("precision", "tile", "overlap", "batch", "self_ensemble", "progress", "tail_tile")
    )

    def _model_for(self, dtype: torch.dtype) -> nn.Module:
        """The fp32 master, or a cached copy in ``dtype`` (never converted back and forth)."""
        if dtype not in self._models:
            self._models[dtype] = copy.deepcopy(self.model).to(dtype)
        return self._models[dtype]

    def _two_stage(self, model: nn.Module, tail_tile: int) -> Callable[[Tensor], Tensor]:
        """The network as body on the whole window, then the tail on exact sub-tiles."""
        margin = tail_margin(self.spec)
        if tail_tile == 0 or margin is None or not hasattr(model, "forward_tail"):
            return model
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        s = self.scale
        forward_tail: Callable[[Tensor], Tensor] = getattr(model, "forward_tail")  # noqa: B009
        forward_features: Callable[[Tensor], Tensor] = getattr(model, "forward_features")  # noqa: B009

        def tail(t: Tensor) -> Tensor:
            return forward_tail(t.contiguous(memory_format=fmt))

        def net(x: Tensor) -> Tensor:
            feats = forward_features(x)
            b, _, h, w = feats.shape
            if tail_tile >= max(h, w):
                return forward_tail(feats)
            out = torch.empty((b, 3, h * s, w * s), dtype=x.dtype, device=x.device)
            for i in range(b):
                tiled_forward(
                    tail,
                    feats[i],
                    s,
                    _tensor_writer(out[i], clamp=False),
                    tile=tail_tile,
                    overlap=margin,
                    check_finite=False,  # the caller's tiled_forward checks ``out``
                )
            return out

        return net

    def _forward(
        self, dtype: torch.dtype, self_ensemble: bool, tail_tile: int
    ) -> Callable[[Tensor], Tensor]:
        net = self._two_stage(self._model_for(dtype), tail_tile)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format

        def run(x: Tensor) -> Tensor:
            x = x.to(self.device, non_blocking=True)
            x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
            x = x.to(dtype).contiguous(memory_format=fmt)
            if not self_ensemble:
                return net(x).float()
            return forward_x8(lambda xk: net(xk.contiguous(memory_format=fmt)).float(), x)

        return run

    # -- core

    def run_chw(self, lr: Tensor, write: Callable[[int, int, Tensor], None], **options: Any) -> int:
        """Upscale one (3, H, W) image (uint8 0..255 or float 0..1, any device) tile by tile,
        passing each output core to ``write(y, x, block)``; returns the number of tiles."""
        opts = self._options(options)
        if lr.dim() != 3 or lr.shape[0] != self.description.channels:
            raise DataError(
                f"expected a ({self.description.channels}, H, W) image, got shape {tuple(lr.shape)}"
            )
        self.description.size_requirements.check(int(lr.shape[1]), int(lr.shape[2]))
        fwd = self._forward(opts["dtype"], bool(opts["self_ensemble"]), opts["tail_tile"])
        bar = None
        if opts["progress"]:
            from tqdm import tqdm

            n = len(
                tile_grid(
                    int(lr.shape[1]),
                    int(lr.shape[2]),
                    opts["tile"],
                    opts["overlap"],
                    self.description.tiling.align,
                )
            )
            bar = tqdm(total=n, unit="tile", leave=False, disable=n < 2)
        try:
            with torch.inference_mode():
                return tiled_forward(
                    fwd,
                    lr,
                    self.scale,
                    write,
                    tile=opts["tile"],
                    overlap=opts["overlap"],
                    batch=opts["batch"],
                    on_tile=bar.update if bar is not None else None,
                    align=self.description.tiling.align,
                )
        finally:
            if bar is not None:
                bar.close()

    # -- public entry points

    def __call__(self, image: Any, **options: Any) -> Any:
        """Upscale a PIL image, a numpy array or a torch tensor (see the module docstring)."""
        if isinstance(image, Tensor):
            return self.upscale_tensor(image, **options)
        if isinstance(image, np.ndarray):
            return self.upscale_array(image, **options)
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover - Pillow is a dependency
            Image = None  # type: ignore[assignment]
        if Image is not None and isinstance(image, Image.Image):
            return self.upscale_pil(image, **options)
        raise DataError(
            f"cannot upscale a {type(image).__name__}; pass a PIL image, a numpy array "
            "(HxW, HxWx3 or HxWx4) or a torch tensor ((3, H, W) or (N, 3, H, W))"
        )

    def upscale_array(self, img: np.ndarray, **options: Any) -> np.ndarray:
        """uint8 or float [0, 1] image -> same layout and dtype, ``scale`` times larger.

        Layouts: HxW or HxWx1 (grey), HxWx2 (grey + alpha), HxWx3 (RGB), HxWx4 (RGBA).
        """
        img = np.asarray(img)
        if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating):
            hint = " (16-bit images are not supported)" if img.dtype == np.uint16 else ""
            raise DataError(f"expected a uint8 or float image, got dtype {img.dtype}{hint}")
        if img.ndim not in (2, 3) or (img.ndim == 3 and not 1 <= img.shape[2] <= 4):
            raise DataError(f"expected an HxW or HxWxC image with C in 1..4, got shape {img.shape}")
        if img.shape[0] == 0 or img.shape[1] == 0:
            raise DataError(f"empty image of shape {img.shape}")
        planes = img[:, :, None] if img.ndim == 2 else img
        c = planes.shape[2]
        gray, has_alpha = c in (1, 2), c in (2, 4)
        colour = planes[:, :, :1] if gray else planes[:, :, :3]
        rgb = np.repeat(colour, 3, axis=2) if gray else colour
        s = self.scale
        h, w = img.shape[:2]
        out = np.empty((h * s, w * s) + img.shape[2:], dtype=img.dtype)
        view = out if img.ndim == 2 else (out[:, :, 0] if gray else out[:, :, :3])
        if img.dtype == np.uint8:
            writer = _uint8_writer(view, gray)
            lr = torch.from_numpy(np.require(rgb, requirements=("C", "W"))).permute(2, 0, 1)
        else:
            bad = int(rgb.size - np.count_nonzero(np.isfinite(rgb)))
            peak = float(rgb.max()) if rgb.size and not bad else 0.0
            _check_float_pixels(bad, peak, f"float image ({img.dtype})")
            writer = _float_writer(view, gray)
            rgb = np.require(rgb, dtype=np.float32, requirements=("C", "W"))
            lr = torch.from_numpy(rgb).permute(2, 0, 1)
        self.run_chw(lr, writer, **options)
        if has_alpha:
            from facd.data.imresize import bicubic_upsample

            a = bicubic_upsample(np.ascontiguousarray(planes[:, :, -1]), s)
            out[:, :, -1] = a if a.dtype == np.uint8 else np.clip(a, 0.0, 1.0)
        return out

    def upscale_tensor(self, x: Tensor, **options: Any) -> Tensor:
        """Float (3, H, W) or (N, 3, H, W) in [0, 1] -> same layout, dtype and device, x scale."""
        if not x.is_floating_point():
            raise DataError(f"expected a float tensor in [0, 1], got dtype {x.dtype}")
        batched = x.dim() == 4
        if not batched and x.dim() != 3:
            raise DataError(f"expected a (3, H, W) or (N, 3, H, W) tensor, got {tuple(x.shape)}")
        xb = x if batched else x.unsqueeze(0)
        if xb.numel():
            bad = int((~torch.isfinite(xb.detach())).sum())
            peak = float(xb.detach().amax()) if not bad else 0.0
            _check_float_pixels(bad, peak, f"float tensor ({x.dtype})")
        s = self.scale
        n, c, h, w = xb.shape
        out = torch.empty((n, c, h * s, w * s), dtype=x.dtype, device=x.device)
        for i in range(n):
            self.run_chw(xb[i], _tensor_writer(out[i]), **options)
        return out if batched else out[0]

    def upscale_pil(self, img: Any, **options: Any) -> Any:
        """PIL image -> PIL image (RGB, L, RGBA or LA, as given); EXIF orientation applied."""
        from PIL import Image, ImageOps

        img = ImageOps.exif_transpose(img)
        mode = img.mode
        if mode in ("I", "F") or mode.startswith("I;16"):
            raise DataError(f"{mode} PIL image with 16/32 bits per channel is not supported")
        if mode == "P":
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        elif mode == "PA":
            img = img.convert("RGBA")
        elif mode == "1":
            img = img.convert("L")
        elif mode not in ("RGB", "L", "RGBA", "LA"):
            img = img.convert("RGB")
        mode = img.mode
        arr = np.asarray(img)
        return Image.fromarray(self.upscale_array(arr, **options))


def load(
    model: str | nn.Module,
    *,
    scale: int | None = None,
    device: str | torch.device = "auto",
    **options: Any,
) -> Upscaler:
    """An :class:`Upscaler` for a preset name (untrained; needs ``scale``), a facd checkpoint,
    an official EDSR/RCAN ``.pt``, BasicSR ``.pth`` or SwinIR ``{"params": ...}`` file, or a
    network built by facd.

    A preset name warns (:class:`facd.UntrainedWeightsWarning`) that its weights are random; the
    warning is raised after the options were checked, so a bad option fails without it.

    ``options`` are :class:`Upscaler` defaults: ``tile``, ``overlap``, ``batch``, ``precision``,
    ``self_ensemble``, ``channels_last``, ``progress``.
    """
    if isinstance(model, nn.Module):
        from facd.archs import spec_of_module

        spec = spec_of_module(model)
        if spec is None:
            from facd.archs.registry import families

            raise FacdError(f"facd.load needs a network built by facd ({families()}, with a .spec)")
        if scale is not None and scale != spec.scale:
            raise FacdError(f"model is x{spec.scale}, but x{scale} was asked for")
        return Upscaler(model, spec, device, **options)
    from facd.archs.io import load_model
    from facd.archs.spec import warn_untrained

    net, spec = load_model(model, scale)
    up = Upscaler(net, spec, device, **options)
    warn_untrained(os.fspath(model) if isinstance(model, (str, os.PathLike)) else model)
    return up
