"""The ``facd`` command line.

Each subcommand lives in ``facd.commands.<name>`` and exposes ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``. Modules are imported only when their subcommand runs, so ``facd --help``
does not import torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help). Order is the order shown in --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("facd.commands.train", "train a teacher, or distil a student from a teacher"),
    "eval": ("facd.commands.eval", "measure Y-PSNR/SSIM on benchmark sets"),
    "upscale": ("facd.commands.upscale", "super-resolve images (tiled, any size)"),
    "export": ("facd.commands.export", "export a model to ONNX"),
    "info": ("facd.commands.info", "architecture, parameter count and MACs of a model"),
    "methods": ("facd.commands.methods", "list the distillation methods and their loss terms"),
    "compare": ("facd.commands.compare", "side-by-side crops of several models on one image"),
    "degrade": (
        "facd.commands.degrade",
        "make MATLAB-bicubic LR images from a folder of HR images",
    ),
    "quickstart": ("facd.commands.quickstart", "distil a small student offline, end to end"),
    "reproduce": ("facd.commands.reproduce", "run a reproduction protocol and write its results"),
}


def _load_command(name: str):
    module_name, _ = COMMANDS[name]
    return importlib.import_module(module_name)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facd", description="Knowledge distillation for super-resolution networks."
    )
    from facd import __version__

    parser.add_argument("--version", action="version", version=f"facd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == only:
            _load_command(name).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from facd.errors import FacdError
    from facd.messages import cli_wording

    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    only = command if command in COMMANDS else None
    parser = build_parser(only)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    try:
        with cli_wording(f"facd {args.command}"):  # messages say --flag, warnings go to stderr
            return int(_load_command(args.command).run(args) or 0)
    except FacdError as err:
        print(f"facd {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"facd {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
