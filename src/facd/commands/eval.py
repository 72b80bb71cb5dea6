"""``facd eval``: Y-PSNR / SSIM of a model, or the bicubic baseline, on benchmark sets.

Prints a table on stdout (progress bar on stderr) and optionally writes JSON::

    {"scale": 4, "model": "...", "gray": "native", "self_ensemble": false,
     "sets": {"Set5": {"psnr_y": ..., "ssim_y": ..., "images": 5, "per_image": {...}}, ...}}

With several scales (``--model bicubic --scale 2 3 4``) the JSON is
``{"model": "bicubic", "scales": [<one single-scale object per scale>]}``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from facd.commands._args import int_arg

DEFAULT_SETS = ("Set5", "Set14", "B100", "Urban100")
DATA_ROOT_ENV = "FACD_DATA_ROOT"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        "-m",
        required=True,
        metavar="MODEL",
        help="'bicubic', a preset name (untrained) or a checkpoint file",
    )
    parser.add_argument(
        "--scale",
        "-s",
        type=int_arg(1),
        nargs="+",
        metavar="S",
        help="upscaling factor; optional for checkpoints (detected); several only for bicubic",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help=f"folder holding <Set>/HR (default: ${DATA_ROOT_ENV}, else ../shared/data where it "
        "exists, else the data folder of facd fetch: $FACD_HOME/data)",
    )
    parser.add_argument(
        "--sets", nargs="+", default=list(DEFAULT_SETS), metavar="SET", help="benchmark sets"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON")
    parser.add_argument(
        "--self-ensemble", action="store_true", help="x8 geometric self-ensemble (flips/transposes)"
    )
    parser.add_argument(
        "--save-images", type=Path, metavar="DIR", help="write SR images to DIR/<Set>/X<s>/"
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--gray",
        default="native",
        choices=("native", "y"),
        help="single-channel HR images: measure on grey values (native, published convention) "
        "or on Y of the replicated image",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def data_root_from(arg: Path | None) -> Path:
    """``--data-root``, else ``$FACD_DATA_ROOT``, else ``../shared/data`` where it exists, else
    ``<fetch folder>/data``, where ``facd fetch benchmark`` installs the sets."""
    if arg is not None:
        return Path(arg)
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        return Path(env)
    from facd.errors import FacdError
    from facd.fetch.store import SHARED_DATA_ROOT, default_data_root

    root = default_data_root()
    if not root.is_dir():
        raise FacdError(
            f"no benchmark sets: neither {SHARED_DATA_ROOT} nor {root} exists; run "
            "'facd fetch benchmark' to download Set5, Set14, B100 and Urban100, or give --data-root"
        )
    return root


def format_table(result: dict[str, Any]) -> str:
    """Plain-text table of one single-scale result."""
    head = f"{result['model']}  x{result['scale']}  gray={result['gray']}"
    if result.get("self_ensemble"):
        head += "  self-ensemble x8"
    lines = [head, f"{'set':<12}{'images':>7}{'PSNR-Y (dB)':>13}{'SSIM-Y':>9}"]
    for name, r in result["sets"].items():
        lines.append(f"{name:<12}{r['images']:>7}{r['psnr_y']:>13.3f}{r['ssim_y']:>9.4f}")
    return "\n".join(lines)


def _inputs(args: argparse.Namespace, root: Path) -> list[Path]:
    """The files eval reads: the model file and every file of the benchmark sets."""
    found = [Path(args.model)] if Path(args.model).is_file() else []
    for name in args.sets:
        if (root / name).is_dir():
            found += [p for p in (root / name).rglob("*") if p.is_file()]
    return found


def run(args: argparse.Namespace) -> int:
    from facd.commands._checks import check_writable_dir, check_writable_file
    from facd.errors import FacdError
    from facd.evaluate import BICUBIC, evaluate
    from facd.fileio import atomic_write_text, refuse_overwriting_inputs

    if args.json is not None:
        check_writable_file(args.json, "--json", example="results.json")
    if args.save_images is not None:
        check_writable_dir(args.save_images, "--save-images")
    scales = list(dict.fromkeys(args.scale or []))
    root = data_root_from(args.data_root)
    if args.json is not None:
        refuse_overwriting_inputs([(f"--json {args.json}", args.json)], _inputs(args, root))
    common = dict(
        sets=args.sets,
        data_root=root,
        device=args.device,
        self_ensemble=args.self_ensemble,
        save_images=args.save_images,
        progress=not args.quiet,
        gray=args.gray,
        model_name=args.model,
    )
    results: list[dict[str, Any]] = []
    if args.model == BICUBIC:
        if not scales:
            raise FacdError("--model bicubic needs --scale")
        for s in scales:
            results.append(evaluate(BICUBIC, scale=s, **common))
    else:
        from facd.archs.io import load_model

        if len(scales) > 1:
            raise FacdError("several scales are only supported for --model bicubic")
        from facd.archs.spec import warn_untrained

        model, spec = load_model(args.model, scales[0] if scales else None)
        warn_untrained(args.model)  # a preset has random weights: say so before its numbers
        result = evaluate(model, scale=spec.scale, **common)
        result["arch"] = spec.describe()
        results.append(result)
    if args.json is not None:  # before printing: a closed stdout pipe must not lose the file
        doc = results[0] if len(results) == 1 else {"model": args.model, "scales": results}
        atomic_write_text(args.json, json.dumps(doc, indent=2) + "\n")
    print("\n\n".join(format_table(r) for r in results))
    return 0
