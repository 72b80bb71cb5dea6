"""Reading and writing 8-bit images as numpy arrays.

Conventions:

* Arrays are uint8, HxWx3 RGB or HxW single-channel, row-major (H first).
* EXIF orientation is applied on reading, so arrays are upright as a viewer shows them.
* Alpha: an image with an alpha channel (RGBA, LA, palette with transparency) is accepted only
  if every pixel is fully opaque; the alpha channel is then dropped. Otherwise a ``DataError``
  is raised, since there is no right background colour to composite onto.
* 16-bit images (16-bit PNG, grayscale or colour; 32-bit integer or float modes) are refused
  with a ``DataError``: convert them to 8 bits per channel first. Decoders would otherwise
  silently drop the low byte.
* Unreadable, truncated or corrupt files raise a one-line ``DataError`` naming the file.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from facd.errors import DataError
from facd.fileio import atomic_write_bytes

__all__ = [
    "IMAGE_EXTENSIONS",
    "list_images",
    "open_8bit",
    "read_image",
    "read_image_raw",
    "to_array",
    "write_image",
]

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".bmp", ".jpg", ".jpeg", ".webp"})

_WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}
_HIGH_DEPTH_MODES = {"I", "F", "I;16", "I;16B", "I;16L", "I;16N"}


def _tile_rawmodes(img: Image.Image) -> list[str]:
    """Raw modes of the decoder tiles (e.g. 'RGB;16B' for a 48-bit PNG), read before decoding."""
    modes = []
    for tile in getattr(img, "tile", None) or []:
        args = tile[3] if len(tile) > 3 else None
        if isinstance(args, tuple):
            args = args[0] if args else None
        if isinstance(args, str):
            modes.append(args)
    return modes


def _is_gray_palette(img: Image.Image) -> bool:
    palette = img.getpalette("RGB")
    if not palette:
        return False
    rgb = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    used = np.unique(np.asarray(img))
    used = used[used < len(rgb)]
    colours = rgb[used]
    return bool(np.all(colours[:, 0] == colours[:, 1]) and np.all(colours[:, 1] == colours[:, 2]))


def _drop_opaque_alpha(img: Image.Image, path: Path) -> Image.Image:
    """Return ``img`` without its alpha channel; refuse if any pixel is not fully opaque."""
    alpha = np.asarray(img.getchannel("A"))
    if alpha.size and int(alpha.min()) < 255:
        share = float(np.mean(alpha < 255))
        raise DataError(
            f"{path}: image has transparent pixels ({share:.1%} not opaque); "
            "flatten it onto a background or remove the alpha channel first"
        )
    return img.convert("L" if img.mode in ("LA", "La") else "RGB")


def open_8bit(path: str | os.PathLike[str]) -> tuple[Image.Image, Path]:
    """Open, decode and EXIF-transpose an image, checking bit depth; returns (image, path)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such image file")
    try:
        with Image.open(path) as src:
            rawmodes = _tile_rawmodes(src)
            # 16-bit PNG colour is decoded as 8-bit 'RGB'; only the raw mode ('RGB;16B') tells.
            wide = any(m.endswith((";16B", ";16L", ";16N")) for m in rawmodes)
            if src.mode in _HIGH_DEPTH_MODES or wide:
                raise DataError(
                    f"{path}: {src.mode} {src.format} image with 16 bits per channel is not "
                    "supported; convert it to 8 bits per channel first"
                )
            src.load()
            img = ImageOps.exif_transpose(src)
    except DataError:
        raise
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ... on bad files
        msg = str(err).strip() or type(err).__name__
        raise DataError(f"{path}: cannot read image ({msg})") from None
    return img, path


def to_array(img: Image.Image, path: Path, keep_gray: bool) -> np.ndarray:
    """Convert a decoded image to uint8 HxW (gray, if ``keep_gray``) or HxWx3 RGB."""
    mode = img.mode
    if mode == "P" and "transparency" in img.info or mode == "PA":
        img = _drop_opaque_alpha(img.convert("RGBA"), path)
    elif mode == "P":
        img = img.convert("L") if _is_gray_palette(img) else img.convert("RGB")
    elif mode in ("RGBA", "RGBa", "LA", "La"):
        img = _drop_opaque_alpha(img, path)
    elif mode == "1":
        img = img.convert("L")
    elif mode not in ("L", "RGB"):
        img = img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, ...
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2 and not keep_gray:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image as uint8 HxWx3 RGB; grayscale is replicated to three channels."""
    img, p = open_8bit(path)
    return to_array(img, p, keep_gray=False)


def read_image_raw(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image keeping its stored channel count: uint8 HxW if single-channel
    (L, 1-bit, gray palette), else HxWx3 RGB. Same checks as :func:`read_image`."""
    img, p = open_8bit(path)
    return to_array(img, p, keep_gray=True)


def write_image(
    path: str | os.PathLike[str],
    img: np.ndarray,
    quality: int | None = None,
    icc_profile: bytes | None = None,
) -> None:
    """Write uint8 HxW or HxWx3 (HxWx1 is squeezed) atomically; format from the extension.

    ``quality`` applies to JPEG (default 95) and WebP (default: lossless). ``icc_profile`` is
    embedded as given (PNG, JPEG, WebP; BMP cannot hold one and refuses it). Parent folders are
    created. The file is written to a temporary name in the same folder and then renamed, so a
    crash never leaves a half-written image under ``path`` (:mod:`facd.fileio`: a failed write
    is a one-line ``StorageError``).
    """
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(_WRITE_FORMATS))
        raise DataError(f"{path}: unsupported image extension (use one of {known})")
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise DataError(f"{path}: expected a uint8 HxW or HxWx3 array, got {arr.dtype} {arr.shape}")
    options: dict[str, object] = {}
    if icc_profile is not None:
        if fmt == "BMP":
            raise DataError(f"{path}: BMP cannot hold an ICC colour profile; use png, jpg or webp")
        options["icc_profile"] = icc_profile
    if fmt == "JPEG":
        options["quality"] = 95 if quality is None else int(quality)
    elif fmt == "WEBP":
        if quality is None:
            options["lossless"] = True
        else:
            options["quality"] = int(quality)
    pil = Image.fromarray(np.ascontiguousarray(arr))  # 2-D -> "L", HxWx3 -> "RGB"
    buf = io.BytesIO()
    pil.save(buf, format=fmt, **options)
    atomic_write_bytes(path, buf.getvalue())


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly in ``folder`` (not recursive), sorted by name; hidden files skipped.

    Raises ``DataError`` naming the folder if it does not exist or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found")
    files = sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    )
    if not files:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise DataError(f"{folder}: no images found (looked for {exts})")
    return files
