"""``facd upscale MODEL INPUT... -o OUT_DIR``: super-resolve image files of any size.

Inputs are files, folders (their images, not recursive) or glob patterns. Each output is
``OUT_DIR/<stem>_x<S>.<format>``. Input handling:

* EXIF orientation is applied, so outputs are upright;
* grey images give grey outputs (RGB network output -> MATLAB ``rgb2gray``);
* transparency is kept: RGB goes through the network, alpha through MATLAB bicubic
  (PNG/WebP only; JPEG cannot store alpha); fully opaque alpha is dropped;
* 16-bit images are refused (convert them to 8 bits per channel first);
* an ICC colour profile is embedded in the output as it was, when it describes the output's
  colour model (RGB for colour, GRAY for grey outputs): the network maps pixel values of the
  input's colour space to the same space. Any other profile (CMYK, or GRAY on a colour output)
  is dropped, with a one-line warning naming the file;
* of an animated image (APNG, animated WebP) only the first frame is upscaled, with a one-line
  warning naming the file and its frame count.

Before any image is written, the whole batch is checked: ``-o`` must be a writable folder (or
creatable), and no output may be one of the inputs (``a.png`` -> ``a_x4.png`` while
``a_x4.png`` is itself an input), after resolving symlinks. Running out of memory names the
``--tile`` to use; a model that outputs NaN stops with an error instead of writing black images.
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
from pathlib import Path

import numpy as np

from facd.commands._args import int_arg
from facd.errors import DataError, FacdError
from facd.infer.device import DEVICES, PRECISIONS
from facd.infer.tiling import DEFAULT_OVERLAP, DEFAULT_TILE_64, default_tile

FORMATS = ("png", "jpg", "webp")


def _overlap(text: str) -> int | str:
    return "exact" if text.strip().lower() == "exact" else int_arg(0)(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model", metavar="MODEL", help="preset name, facd checkpoint, or official/BasicSR file"
    )
    parser.add_argument(
        "inputs", metavar="INPUT", nargs="+", help="image files, folders or glob patterns"
    )
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="OUT_DIR", help="output folder"
    )
    parser.add_argument(
        "--scale", "-s", type=int, default=None, help="scale factor (needed for presets only)"
    )
    parser.add_argument(
        "--tile",
        type=int_arg(0),
        default=None,
        metavar="N",
        help=f"tile core size in LR pixels; 0 = whole image at once (default: {DEFAULT_TILE_64} "
        "for 64-channel networks, 256 for 256-channel ones)",
    )
    parser.add_argument(
        "--tile-overlap",
        type=_overlap,
        default=DEFAULT_OVERLAP,
        metavar="M",
        help="LR pixels of context around each tile, or 'exact': the model's receptive margin, "
        f"from which EDSR tiles equal the whole-image output (default {DEFAULT_OVERLAP})",
    )
    parser.add_argument("--device", default="auto", help=f"{', '.join(DEVICES)} or cuda:N")
    parser.add_argument(
        "--precision",
        choices=tuple(PRECISIONS),
        default="fp32",
        help="fp16/bf16 only where the device computes them natively (CUDA)",
    )
    parser.add_argument(
        "--self-ensemble", action="store_true", help="average the 8 flips/transposes (x8 time)"
    )
    parser.add_argument(
        "--batch", type=int_arg(1), default=1, metavar="B", help="tiles per forward pass"
    )
    parser.add_argument("--format", choices=FORMATS, default="png", help="output format")
    parser.add_argument(
        "--quality",
        type=int,
        default=None,
        metavar="Q",
        help="JPEG/WebP quality 1-100 (default: JPEG 95, WebP lossless)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")


# ----------------------------------------------------------------------------- inputs


def gather_inputs(items: list[str]) -> list[Path]:
    """Files, folders and glob patterns -> image paths (order kept, duplicates dropped)."""
    from facd.data.image_io import IMAGE_EXTENSIONS, list_images

    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(list_images(path))
        elif glob.has_magic(item):
            matches = sorted(
                Path(m)
                for m in glob.glob(item)
                if Path(m).is_file() and Path(m).suffix.lower() in IMAGE_EXTENSIONS
            )
            if not matches:
                raise DataError(f"{item}: no images match this pattern")
            found.extend(matches)
        else:
            raise DataError(f"{item}: no such file, folder or pattern")
    seen: set[Path] = set()
    unique = []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def output_paths(
    inputs: list[Path], out_dir: Path, scale: int, fmt: str, model: str | None = None
) -> list[Path]:
    """``OUT_DIR/<stem>_x<S>.<fmt>`` per input, checked for the whole batch before any write.

    Refused: two inputs with one output, and an output that is *any* input of the batch
    (``a.png``'s output ``a_x4.png`` may be another input) or the ``model`` file
    (:func:`facd.fileio.refuse_overwriting_inputs`: symbolic links, ``.``/``..`` and hard
    links count).
    """
    from facd.fileio import check_name_length, refuse_overwriting_inputs

    outs = [out_dir / f"{p.stem}_x{scale}.{fmt}" for p in inputs]
    owner: dict[Path, Path] = {}
    for src, dst in zip(inputs, outs, strict=True):
        check_name_length(dst, f"output for {src}:")
        key = dst.resolve()
        if key in owner:
            raise DataError(
                f"{owner[key]} and {src} would both be written to {dst}; upscale them separately"
            )
        owner[key] = src
    read = [*inputs, *([Path(model)] if model is not None and Path(model).is_file() else [])]
    refuse_overwriting_inputs(
        [(f"output {dst} (for {src})", dst) for src, dst in zip(inputs, outs, strict=True)],
        read,
        advice="choose another -o folder",
    )
    return outs


def _has_transparency(img) -> bool:
    if img.mode in ("RGBA", "RGBa", "LA", "La", "PA"):
        return True
    return img.mode == "P" and "transparency" in img.info


def read_input(path: Path) -> np.ndarray:
    """uint8 HxW (grey), HxWx2 (grey + alpha), HxWx3 or HxWx4; EXIF orientation applied.

    Bit depth and EXIF are handled by ``facd.data.image_io``; only images with transparent
    pixels take a different route here, to keep their alpha channel.
    """
    from facd.data import image_io

    img, src = image_io.open_8bit(path)  # decoded, EXIF-transposed, 16-bit refused
    if _has_transparency(img):
        grey = img.mode in ("LA", "La")
        rgba = img.convert("LA" if grey else "RGBA")
        arr = np.asarray(rgba)
        if int(arr[..., -1].min()) < 255:
            return np.ascontiguousarray(arr)
    return image_io.to_array(img, src, keep_gray=True)


def kept_profile(src: Path, grey: bool, dst: Path) -> bytes | None:
    """The ICC profile of ``src`` to embed in ``dst``, or None; warns in one line about what is
    dropped: frames after the first of an animation, and a profile of another colour model
    than the output's (bytes 16-19 of an ICC header name its colour space)."""
    from PIL import Image

    from facd.messages import warn

    with Image.open(src) as img:
        frames = int(getattr(img, "n_frames", 1))
        icc = img.info.get("icc_profile") or None
    if frames > 1:
        warn(
            f"{src}: animated image with {frames} frames; only the first frame is upscaled "
            f"({dst.name} is a still image)"
        )
    if icc is None:
        return None
    space = icc[16:20].decode("latin-1").strip() or "unknown"
    if space == ("GRAY" if grey else "RGB"):
        return icc
    warn(
        f"{src}: its ICC colour profile ({space}) does not describe the "
        f"{'grey' if grey else 'RGB'} output and is not copied to {dst.name}; colours may "
        "look different in colour-managed viewers"
    )
    return None


def write_output(
    path: Path, img: np.ndarray, quality: int | None, icc_profile: bytes | None = None
) -> None:
    """Write uint8 grey/RGB with ``image_io.write_image``; grey/RGB + alpha as PNG or WebP;
    ``icc_profile`` is embedded as given."""
    from facd.data.image_io import write_image

    if img.ndim == 2 or img.shape[2] == 3:
        write_image(path, img, quality=quality, icc_profile=icc_profile)
        return
    import io

    from PIL import Image

    from facd.fileio import atomic_write_bytes

    fmt = {".png": "PNG", ".webp": "WEBP"}.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: cannot store transparency in {path.suffix}; use png or webp")
    options: dict[str, object] = {}
    if fmt == "WEBP":
        options = {"lossless": True} if quality is None else {"quality": int(quality)}
    if icc_profile is not None:
        options["icc_profile"] = icc_profile
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format=fmt, **options)
    atomic_write_bytes(path, buf.getvalue())


# ----------------------------------------------------------------------------- run


def _upscale_one(up, lr: np.ndarray, src: Path, args: argparse.Namespace) -> np.ndarray:
    """``up(lr)`` with out-of-memory and NaN failures turned into one-line errors."""
    from facd.infer.tiling import NonFiniteOutputError, is_out_of_memory

    try:
        return up(lr)
    except NonFiniteOutputError:
        hint = (
            ""
            if args.precision == "fp32"
            else f", or --precision {args.precision} overflowed (try --precision fp32)"
        )
        raise FacdError(
            f"model {args.model} produced NaN or infinite values on {src}; its weights are "
            f"broken (e.g. saved from a diverged training run){hint}"
        ) from None
    except (RuntimeError, MemoryError) as err:
        if not is_out_of_memory(err):
            raise
        h, w = lr.shape[:2]
        tile, batch = up.options["tile"], up.options["batch"]
        if tile == 0 or tile >= max(h, w):
            default = default_tile(up.description.spec)
            suggest = default if 0 < default < max(h, w) else max(8, max(h, w) // 2 // 8 * 8)
            advice = f"the whole {w}x{h} image at once; use --tile {suggest} (or smaller)"
        else:
            advice = (
                f"with --tile {tile} --batch {batch}; use a smaller --tile, e.g. {tile // 2 or 1}"
            )
            if batch > 1:
                advice += ", or --batch 1"
        raise FacdError(f"{src}: out of memory upscaling {advice}") from None


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    import facd
    from facd.commands._checks import check_writable_dir
    from facd.infer.allocator import reuse_freed_memory
    from facd.infer.tiling import tile_grid

    if args.quality is not None and not 1 <= args.quality <= 100:
        raise DataError(f"--quality must be between 1 and 100, got {args.quality}")
    check_writable_dir(args.output, "-o")
    inputs = gather_inputs(args.inputs)
    reuse_freed_memory()  # this process only upscales: no page faults per layer
    up = facd.load(
        args.model,
        scale=args.scale,
        device=args.device,
        precision=args.precision,
        tile=args.tile,
        overlap=args.tile_overlap,
        batch=args.batch,
        self_ensemble=args.self_ensemble,
        progress=not args.quiet,
    )
    desc = up.description
    outs = output_paths(inputs, Path(args.output), desc.scale, args.format, args.model)
    t0 = time.perf_counter()
    approx = False
    bar = tqdm(inputs, desc="upscale", unit="img", file=sys.stderr, disable=args.quiet)
    for src, dst in zip(bar, outs, strict=True):
        lr = read_input(src)
        if lr.ndim == 3 and lr.shape[2] in (2, 4) and args.format == "jpg":
            raise DataError(
                f"{src}: image has transparent pixels and JPEG cannot store alpha; "
                "use --format png or webp"
            )
        overlap = up.options["overlap"]
        n_tiles = len(
            tile_grid(lr.shape[0], lr.shape[1], up.options["tile"], overlap, desc.tiling.align)
        )
        approx |= n_tiles > 1 and not (desc.exact_tiling and overlap >= desc.receptive_margin)
        icc = kept_profile(src, lr.ndim == 2 or lr.shape[2] == 2, dst)
        write_output(dst, _upscale_one(up, lr, src, args), args.quality, icc)
    if not args.quiet:
        took = time.perf_counter() - t0
        print(
            f"wrote {len(outs)} image(s) to {args.output} in {took:.1f} s "
            f"({desc.spec.describe()}, {up.device}, {args.precision})",
            file=sys.stderr,
        )
        if approx:
            why = (
                "RCAN's channel attention pools over the whole input"
                if not desc.exact_tiling
                else f"exact from --tile-overlap {desc.receptive_margin}"
            )
            print(
                f"note: tiled output may differ slightly from whole-image output ({why}); "
                "--tile 0 runs whole images",
                file=sys.stderr,
            )
    return 0
