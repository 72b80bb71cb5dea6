"""``facd compare IMAGE... --models NAME=MODEL ... [--crop x,y,w,h] -o fig.png [--scale S]``.

Each IMAGE is an HR image (the LR input is its MATLAB-bicubic downscale) and becomes one row:
an overview with the crop marked, then the crops of HR, bicubic and every model, with each
panel's Y-PSNR (shave = S) on the whole image (``--psnr-region crop`` for the crop only).
Give one ``--crop`` per image, or one for all; without ``--crop`` each image's crop is chosen
where the first two models (or the model and bicubic) differ most
(:func:`facd.compare.choose_crop`, a ``--crop-size`` square) and printed. The PSNR table is
printed too.

Arguments may come in any order: the list after ``--models`` ends at the first value that is
not ``NAME=MODEL`` (so images may follow it), and images may be given in several places.
The scale is read from the checkpoints (facd checkpoints store it; official files have it in
their upsampler's shape); ``--scale`` is needed only when every model is a preset, and must
match the checkpoints when given. The output path is checked before any model runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from facd.compare import AUTO_CROP
from facd.errors import DataError
from facd.infer.device import DEVICES

if TYPE_CHECKING:
    from facd.infer.api import Upscaler


def _named_model(text: str) -> tuple[str, str]:
    name, sep, model = text.partition("=")
    if not sep or not name or not model:
        raise argparse.ArgumentTypeError(f"expected NAME=MODEL, got {text!r}")
    return name, model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", metavar="IMAGE", nargs="+", type=Path, help="HR image(s)")
    parser.add_argument(
        "--models",
        "-m",
        nargs="+",
        action="extend",
        type=_named_model,
        required=True,
        metavar="NAME=MODEL",
        help="panel name and preset/checkpoint, e.g. FACD=runs/facd/best.safetensors",
    )
    parser.add_argument(
        "--scale",
        "-s",
        type=int,
        default=None,
        help="scale factor (default: the checkpoints' scale; needed when all models are presets)",
    )
    parser.add_argument(
        "--crop",
        action="append",
        metavar="x,y,w,h",
        help="crop in the image's pixels; repeat once per image (or give one for all); "
        "default: where the first two models differ most",
    )
    parser.add_argument(
        "--crop-size",
        type=int,
        default=AUTO_CROP,
        metavar="N",
        help=f"side of a crop chosen without --crop, in the image's pixels (default {AUTO_CROP})",
    )
    parser.add_argument(
        "--hr-is-input",
        action="store_true",
        help="the images are model inputs, not HR: no downscaling, no PSNR",
    )
    parser.add_argument(
        "--psnr-region",
        choices=("image", "crop"),
        default="image",
        help="measure Y-PSNR on the whole image (default, shave = scale) or the crop (no shave)",
    )
    parser.add_argument("--panel-width", type=int, default=256, help="pixels per panel")
    parser.add_argument("--no-overview", action="store_true", help="leave out the overview column")
    parser.add_argument(
        "--tile", type=int, default=0, help="tile size in LR pixels (default 0: whole image)"
    )
    parser.add_argument("--device", default="auto", help=f"{', '.join(DEVICES)} or cuda:N")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="FIG.png")


def _models_flag_value(token: str) -> tuple[bool, str | None]:
    """Is ``token`` the ``--models``/``-m`` flag (or an unambiguous prefix), and its ``=value``."""
    if token.startswith("--"):
        flag, sep, value = token.partition("=")
        if len(flag) >= 3 and "--models".startswith(flag):
            return True, value if sep else None
        return False, None
    if token.startswith("-m"):
        value = token[2:]
        return True, (value[1:] if value.startswith("=") else value) or None
    return False, None


def group_models(argv: list[str]) -> list[str]:
    """Rewrite ``--models A=x B=y IMG`` as ``--models=A=x --models=B=y IMG``.

    argparse's ``nargs="+"`` would swallow the image after the models; as separate
    ``--models=VALUE`` options the list ends at the first value that is not ``NAME=MODEL``
    (the value right after the flag always belongs to it, so ``-m typo`` still names the typo).
    """
    out: list[str] = []
    in_models = need_value = False
    for i, token in enumerate(argv):
        if token == "--":
            out.extend(argv[i:])
            need_value = False
            break
        is_flag, value = _models_flag_value(token)
        if is_flag:
            if need_value:
                out.append("--models")  # a flag without values: let argparse say so
            in_models, need_value = True, value is None
            if value is not None:
                out.append(f"--models={value}")
        elif in_models and not token.startswith("-") and (need_value or "=" in token):
            out.append(f"--models={token}")
            need_value = False
        else:
            if need_value:
                out.append("--models")
            in_models = need_value = False
            out.append(token)
    if need_value:
        out.append("--models")
    return out


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Options and images in any order (see the module docstring)."""
    return parser.parse_intermixed_args(group_models(list(argv)))


def load_models(
    models: list[tuple[str, str]], scale: int | None, device: str, tile: int
) -> tuple[list[tuple[str, Upscaler]], int]:
    """Load every ``(name, ref)`` as an Upscaler; returns them (in order) and the common scale.

    Checkpoints are loaded first: without ``scale`` the first one sets it and the others must
    agree; presets (which have no stored scale) then get it.
    """
    import facd
    from facd.archs.spec import PRESETS

    is_preset = [ref in PRESETS for _, ref in models]
    if scale is None and all(is_preset):
        presets = ", ".join(ref for _, ref in models)
        raise DataError(f"presets ({presets}) have no stored scale; give --scale S")
    loaded: dict[int, Upscaler] = {}
    first = ""
    for i in sorted(range(len(models)), key=lambda k: is_preset[k]):
        name, ref = models[i]
        up = facd.load(ref, scale=scale if is_preset[i] else None, device=device, tile=tile)
        if scale is None:
            scale, first = up.scale, name
        elif up.scale != scale:
            whose = f"model {first} is x{scale}" if first else f"--scale is {scale}"
            raise DataError(
                f"{whose} but model {name} ({ref}) is x{up.scale}; compare models of one scale"
            )
        loaded[i] = up
    assert scale is not None
    return [(name, loaded[i]) for i, (name, _) in enumerate(models)], scale


def run(args: argparse.Namespace) -> int:
    from facd.commands._checks import check_writable_file
    from facd.compare import Crop, build_comparison, parse_crop
    from facd.data.image_io import _WRITE_FORMATS, read_image_raw, write_image
    from facd.fileio import refuse_overwriting_inputs
    from facd.infer.tiling import is_out_of_memory

    crops: list[Crop | None] = [parse_crop(c) for c in args.crop or []] or [None]
    if len(crops) == 1:
        crops = crops * len(args.images)
    if len(crops) != len(args.images):
        raise DataError(
            f"got {len(args.images)} image(s) but {len(crops)} --crop; give one per image or one"
        )
    if args.panel_width < 16:
        raise DataError(f"--panel-width must be >= 16, got {args.panel_width}")
    names = [n for n, _ in args.models]
    if len(set(names)) != len(names):
        raise DataError(f"model names must differ, got {names}")
    check_writable_file(args.output, "-o", example="compare.png")
    if Path(args.output).suffix.lower() not in _WRITE_FORMATS:
        known = ", ".join(sorted(_WRITE_FORMATS))
        raise DataError(f"-o {args.output}: unsupported image extension (use one of {known})")
    read = [*args.images, *(Path(ref) for _, ref in args.models if Path(ref).is_file())]
    refuse_overwriting_inputs([(f"-o {args.output}", args.output)], read)
    models, scale = load_models(args.models, args.scale, args.device, args.tile)
    images = [(p.stem, read_image_raw(p)) for p in args.images]
    try:
        fig = build_comparison(
            images,
            crops,
            models,
            scale,
            hr_is_input=args.hr_is_input,
            psnr_region=args.psnr_region,
            panel_width=args.panel_width,
            overview=not args.no_overview,
            crop_size=args.crop_size,
        )
    except (RuntimeError, MemoryError) as err:
        if not is_out_of_memory(err):
            raise
        if args.tile == 0:
            advice = "whole images (--tile 0, the default); use tiles, e.g. --tile 256"
        else:
            advice = f"--tile {args.tile}; use a smaller one, e.g. --tile {max(1, args.tile // 2)}"
        raise DataError(f"out of memory running the models on {advice}") from None
    import numpy as np

    write_image(args.output, np.asarray(fig.image))
    for row in fig.rows:
        if row.chosen:
            x, y, w, h = row.crop
            print(f"{row.name}: crop {x},{y},{w},{h} ({row.chosen})", file=sys.stderr)
    if not args.hr_is_input:
        print(f"Y-PSNR (dB) on the {args.psnr_region}, shave {scale}:")
        print(fig.table())
    w, h = fig.size
    print(f"wrote {args.output} ({w}x{h})", file=sys.stderr)
    return 0
