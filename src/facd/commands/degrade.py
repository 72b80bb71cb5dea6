"""``facd degrade HR_DIR OUT_DIR --scale S [S ...]``: MATLAB-bicubic LR images from HR images.

For every image ``<name>.<ext>`` in HR_DIR and every scale S, writes
``OUT_DIR/X<S>/<name>x<S>.png`` = MATLAB ``imresize(modcrop(HR, S), 1/S, 'bicubic')``, the EDSR
``LR_bicubic`` layout and naming. Images keep their stored channel count (a single-channel HR
gives a single-channel LR, as in the reference benchmark files). OUT_DIR and its ``X<S>``
folders are checked to be writable folders, none of them the HR folder, and no output to be an
input (:func:`facd.fileio.refuse_overwriting_inputs`), before any image is read.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from facd.commands._args import int_arg
from facd.errors import DataError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("hr_dir", metavar="HR_DIR", type=Path, help="folder of HR images")
    parser.add_argument(
        "out_dir",
        metavar="OUT_DIR",
        type=Path,
        help="output folder; LR images go to OUT_DIR/X<S>/<name>x<S>.png",
    )
    parser.add_argument(
        "--scale",
        "-s",
        type=int_arg(2, 16),
        nargs="+",
        required=True,
        metavar="S",
        help="downscaling factor(s), e.g. HR_DIR OUT_DIR --scale 2 3 4 (after the folders)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from facd.commands._checks import check_writable_dir
    from facd.data.image_io import list_images, read_image_raw, write_image
    from facd.data.imresize import bicubic_downsample
    from facd.fileio import check_name_length, refuse_overwriting_inputs

    files = list_images(args.hr_dir)
    scales = sorted(set(args.scale))
    hr_dir = os.path.realpath(args.hr_dir)
    for folder in (Path(args.out_dir), *(Path(args.out_dir) / f"X{s}" for s in scales)):
        if os.path.realpath(folder) == hr_dir:
            raise DataError(
                f"OUT_DIR {args.out_dir}: {folder} is the HR folder {args.hr_dir}; LR images "
                "must not go among the HR images; choose another OUT_DIR"
            )
    check_writable_dir(args.out_dir, "OUT_DIR")
    for s in scales:
        check_writable_dir(Path(args.out_dir) / f"X{s}", "OUT_DIR")
    outputs = [Path(args.out_dir) / f"X{s}" / f"{p.stem}x{s}.png" for p in files for s in scales]
    for o in outputs:
        check_name_length(o, "OUT_DIR image")
    refuse_overwriting_inputs([(f"OUT_DIR image {o}", o) for o in outputs], files)
    written = 0
    bar = tqdm(files, desc="degrade", unit="img", file=sys.stderr, disable=args.quiet)
    for path in bar:
        hr = read_image_raw(path)
        for s in scales:
            if hr.shape[0] < s or hr.shape[1] < s:
                raise DataError(
                    f"{path}: image of size {hr.shape[1]}x{hr.shape[0]} is smaller than scale {s}"
                )
            lr = bicubic_downsample(hr, s)
            write_image(Path(args.out_dir) / f"X{s}" / f"{path.stem}x{s}.png", lr)
            written += 1
    if not args.quiet:
        where = ", ".join(str(Path(args.out_dir) / f"X{s}") for s in scales)
        print(f"wrote {written} images to {where}", file=sys.stderr)
    return 0
