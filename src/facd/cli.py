"""The ``facd`` command line.

Each subcommand lives in ``facd.commands.<name>`` and exposes ``add_arguments(parser)`` and
``run(args) -> int`` (its one-line help is in :data:`COMMANDS`); it may also define
``parse_args(parser, argv) -> Namespace`` to parse its own arguments (``argv`` without the
command name), e.g. to allow options in any order.
Modules are imported only when their subcommand runs, so ``facd --help`` does not import torch.

Exit codes: 0 success, 1 usage/check failure, 2 a :class:`~facd.errors.FacdError` (its
``exit_code``), 130 Ctrl-C, and 141 (128 + SIGPIPE, what the shell reports for a Unix tool
killed by a closed pipe) when the reader of stdout went away, as with ``facd methods | head -1``:
the rest of the output is dropped without a traceback, like ``cat`` or ``grep`` would, and a
script with ``set -o pipefail`` still sees that the output was cut short.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

# name -> (module, one-line help). Order is the order shown in --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("facd.commands.train", "train a teacher, or distil a student from a teacher"),
    "eval": ("facd.commands.eval", "measure Y-PSNR/SSIM on benchmark sets"),
    "upscale": ("facd.commands.upscale", "super-resolve images (tiled, any size)"),
    "export": (
        "facd.commands.export",
        "export a model to ONNX or to the weight files of other SR code",
    ),
    "info": ("facd.commands.info", "architecture, parameter count and MACs of a model"),
    "methods": ("facd.commands.methods", "list the distillation methods and their loss terms"),
    "compare": ("facd.commands.compare", "side-by-side crops of several models on one image"),
    "degrade": (
        "facd.commands.degrade",
        "make MATLAB-bicubic LR images from a folder of HR images",
    ),
    "quickstart": ("facd.commands.quickstart", "distil a small student offline, end to end"),
    "reproduce": ("facd.commands.reproduce", "run a reproduction protocol and write its results"),
    "fetch": ("facd.commands.fetch", "download official weights and data sets, verified"),
}


def _load_command(name: str):
    module_name, _ = COMMANDS[name]
    return importlib.import_module(module_name)


#: Exit status after a closed stdout pipe: 128 + SIGPIPE, as for a tool killed by the signal.
EXIT_BROKEN_PIPE = 141


def _build_parsers(
    only: str | None = None,
) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and each command's subparser (arguments added only for ``only``)."""
    parser = argparse.ArgumentParser(
        prog="facd", description="Knowledge distillation for super-resolution networks."
    )
    from facd import __version__

    parser.add_argument("--version", action="version", version=f"facd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers = {}
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == only:
            _load_command(name).add_arguments(p)
        subparsers[name] = p
    return parser, subparsers


def _silence_closed_pipes() -> None:
    """Point stdout (and stderr) at /dev/null where their reader has gone, so that the flush
    at interpreter exit does not raise a second BrokenPipeError."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (BrokenPipeError, ValueError):
                # not a real file descriptor (e.g. captured in tests): nothing to redirect
                with contextlib.suppress(OSError, ValueError):
                    os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    from facd.errors import exit_status
    from facd.messages import cli_wording

    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    only = command if command in COMMANDS else None
    parser, subparsers = _build_parsers(only)
    custom = getattr(_load_command(only), "parse_args", None) if only else None
    if custom is not None and argv and argv[0] == only:
        args = custom(subparsers[only], argv[1:])
        args.command = only
    else:
        args, extra = parser.parse_known_args(argv)
        if extra:
            hint = ""
            if hasattr(args, "overrides") and any(
                "=" in e and not e.startswith("-") for e in extra
            ):
                hint = "; --set takes one KEY=VALUE: repeat it (--set a=1 --set b=2)"
            sub = subparsers.get(args.command) or parser
            sub.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    if args.command is None:
        parser.print_help()
        return 1

    def run() -> int:
        with cli_wording(f"facd {args.command}"):  # messages say --flag, warnings go to stderr
            code = int(_load_command(args.command).run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
        return code

    try:
        return exit_status(f"facd {args.command}", run)
    except BrokenPipeError:
        _silence_closed_pipes()
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    raise SystemExit(main())
