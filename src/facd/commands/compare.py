"""``facd compare IMAGE... --models NAME=MODEL ... --scale S --crop x,y,w,h -o fig.png``.

Each IMAGE is an HR image (the LR input is its MATLAB-bicubic downscale) and becomes one row:
an overview with the crop marked, then the crops of HR, bicubic and every model, with each
panel's Y-PSNR (shave = S) on the whole image (``--psnr-region crop`` for the crop only).
Give one ``--crop`` per image, or one for all. The PSNR table is printed too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facd.errors import DataError
from facd.infer.device import DEVICES

HELP = "side-by-side crops of several models on one image"


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
        type=_named_model,
        required=True,
        metavar="NAME=MODEL",
        help="panel name and preset/checkpoint, e.g. FACD=runs/facd/best.safetensors",
    )
    parser.add_argument("--scale", "-s", type=int, required=True, help="scale factor")
    parser.add_argument(
        "--crop",
        action="append",
        required=True,
        metavar="x,y,w,h",
        help="crop in the image's pixels; repeat once per image (or give one for all)",
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


def run(args: argparse.Namespace) -> int:
    import facd
    from facd.compare import build_comparison, parse_crop
    from facd.data.image_io import read_image_raw, write_image

    crops = [parse_crop(c) for c in args.crop]
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
    models = [
        (name, facd.load(ref, scale=args.scale, device=args.device, tile=args.tile))
        for name, ref in args.models
    ]
    images = [(p.stem, read_image_raw(p)) for p in args.images]
    fig = build_comparison(
        images,
        crops,
        models,
        args.scale,
        hr_is_input=args.hr_is_input,
        psnr_region=args.psnr_region,
        panel_width=args.panel_width,
        overview=not args.no_overview,
    )
    import numpy as np

    write_image(args.output, np.asarray(fig.image))
    if not args.hr_is_input:
        print(f"Y-PSNR (dB) on the {args.psnr_region}, shave {args.scale}:")
        print(fig.table())
    w, h = fig.size
    print(f"wrote {args.output} ({w}x{h})", file=sys.stderr)
    return 0
