"""``facd export MODEL --onnx OUT.onnx`` or ``facd export MODEL --layout L -o OUT.pth``.

``--onnx``: ONNX with dynamic size, checked with onnxruntime: the check runs the file with
onnxruntime and the model with torch on random inputs of several sizes and prints the max abs
difference; it fails (exit 1) above 1e-4. ``--no-verify`` skips it.

``--layout official|basicsr``: the weights as the original code (EDSR-PyTorch, RCAN, SwinIR's
``main_test_swinir.py``), BasicSR and spandrel load them (:func:`facd.infer.export.export_weights`,
which reads the file back and checks that it gives the same outputs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from facd.errors import FacdError
from facd.infer.export import DEFAULT_OPSET, LAYOUTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model", metavar="MODEL", help="preset name, facd checkpoint, or official/BasicSR file"
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--onnx", type=Path, metavar="OUT.onnx", help="write ONNX to this file")
    target.add_argument(
        "--layout",
        choices=LAYOUTS,
        help="write a .pt/.pth weights file (-o) in the key layout of the original code "
        "(official) or of BasicSR (basicsr)",
    )
    parser.add_argument(
        "-o", "--output", type=Path, metavar="OUT.pth", help="output file of --layout"
    )
    parser.add_argument(
        "--scale", "-s", type=int, default=None, help="scale factor (needed for presets only)"
    )
    parser.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})"
    )
    parser.add_argument(
        "--no-verify", action="store_true", help="skip the onnxruntime-vs-torch check"
    )


def run(args: argparse.Namespace) -> int:
    from facd.archs.io import load_model
    from facd.commands._checks import check_writable_file
    from facd.errors import FacdError
    from facd.fileio import refuse_overwriting_inputs
    from facd.infer.export import export_onnx, verify_onnx

    if args.layout is not None:
        return _run_layout(args)
    if args.output is not None:
        raise FacdError("-o goes with --layout; an ONNX file is named by --onnx OUT.onnx")
    check_writable_file(args.onnx, "--onnx", example="model.onnx")
    if Path(args.onnx).suffix.lower() != ".onnx":
        raise FacdError(
            f"--onnx {args.onnx}: the file name must end in .onnx, e.g. "
            f"{Path(args.onnx).with_suffix('.onnx').name}"
        )
    model_file = [Path(args.model)] if Path(args.model).is_file() else []
    refuse_overwriting_inputs([(f"--onnx {args.onnx}", args.onnx)], model_file)
    model, spec = load_model(args.model, args.scale)
    path = export_onnx(model, spec, args.onnx, opset=args.opset)
    size_mb = path.stat().st_size / 2**20
    print(f"wrote {path} ({spec.describe()}, opset {args.opset}, {size_mb:.1f} MiB)")
    if args.no_verify:
        return 0
    result = verify_onnx(path, model)
    print(result)
    if not result.ok:
        print(
            f"facd export: error: onnxruntime differs from torch by {result.max_abs_diff:.2e}",
            file=sys.stderr,
        )
        return 1
    return 0


def _run_layout(args: argparse.Namespace) -> int:
    from facd.archs.io import load_model
    from facd.commands._checks import check_writable_file
    from facd.infer.export import check_weights_path, export_weights

    if args.output is None:
        raise FacdError(f"--layout {args.layout} needs -o OUT.pth, the file to write")
    check_writable_file(args.output, "-o", example="model.pth")
    check_weights_path(args.output, args.layout)
    model, spec = load_model(args.model, args.scale)
    path = export_weights(model, spec, args.output, args.layout)
    size_mb = path.stat().st_size / 2**20
    print(f"wrote {path} ({spec.describe()}, {args.layout} layout, {size_mb:.1f} MiB)")
    print(f"read back: same outputs; {spec.declaration.export_layouts[args.layout]}")
    return 0
