"""``facd info MODEL``: architecture, parameter count and MACs of a preset or checkpoint.

MACs are counted at the given OUTPUT size (the LR input is that size divided by the scale);
see :mod:`facd.complexity` for what is counted.
"""

from __future__ import annotations

import argparse
import json
import re


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, e.g. 1280x720, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="a preset name or a checkpoint file")
    parser.add_argument(
        "--scale", "-s", type=int, help="upscaling factor (required for presets; checked for files)"
    )
    parser.add_argument(
        "--size",
        type=_size,
        default=(1280, 720),
        metavar="WxH",
        help="output size at which MACs are counted (default 1280x720)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> int:
    import torch

    from facd.archs.io import load_model
    from facd.archs.spec import PRESETS
    from facd.complexity import MAC_UNIT, model_complexity
    from facd.errors import FacdError

    if args.model in PRESETS:  # no weights needed: build straight on the meta device
        with torch.device("meta"):
            model, spec = load_model(args.model, args.scale)
    else:  # load (and so check) the file, then drop the weights
        model, spec = load_model(args.model, args.scale)
        model = model.to("meta")
    w, h = args.size
    if w < spec.scale or h < spec.scale:
        raise FacdError(f"--size {w}x{h} is smaller than the scale x{spec.scale}")
    c = model_complexity(model, spec.scale, (w, h))
    others = spec.declaration.extra_counts(spec)
    if args.json:
        doc = {
            "model": args.model,
            "architecture": spec.describe(),
            "spec": json.loads(spec.to_json()),
        }
        doc.update(c.to_dict())
        doc["other_parameter_counts"] = others
        doc["requested_output_size"] = [w, h]
        print(json.dumps(doc, indent=2))
        return 0
    (iw, ih), (ow, oh) = c.input_size, c.output_size
    frozen = c.params - c.trainable_params
    print(f"model:        {args.model}")
    print(f"architecture: {spec.describe()}")
    print(
        f"parameters:   {c.trainable_params:,} ({c.trainable_params / 1e6:.3f} M) trainable"
        + (f", +{frozen:,} frozen (MeanShift)" if frozen else "")
        + (f", {note}" if (note := spec.declaration.param_count_note) else "")
    )
    for label, count in others.items():
        print(f"              {count:,} ({count / 1e6:.3f} M) {label}")
    print(f"MACs:         {c.gmacs:.2f} {MAC_UNIT}")
    if c.attention_macs:
        rest = (c.macs - c.attention_macs) / 1e9
        print(
            f"              of which {c.attention_macs / 1e9:.2f} G in the attention products "
            f"(Q K^T, softmax V); {rest:.2f} G without them"
        )
    note = "" if (ow, oh) == (w, h) else f" (requested {w}x{h}, not divisible by {spec.scale})"
    print(f"at output:    {ow}x{oh}{note}, input {iw}x{ih}")
    return 0
