"""Wording of user-facing messages that depends on the caller: the Python API or the CLI.

The same checks run under ``facd.load(...)`` and under ``facd upscale``. Their messages name an
option the way that caller spells it: ``tile=0`` in the Python API (the default) and
``--tile 0`` on the command line, which runs each command inside :func:`cli_wording`. The choice
is a context variable, not a global, so a thread or an API call never sees another caller's
wording. Warnings go through :func:`warn`: ``warnings.warn`` for the API (pointing at the
caller's line, so they can be filtered by category), one ``PROG: warning: ...`` line on stderr
for the CLI.

This module is light (no torch) so that the CLI can use it before a command is imported.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import FrameType

__all__ = [
    "UntrainedWeightsWarning",
    "cli_wording",
    "in_cli",
    "option",
    "untrained_message",
    "warn",
]

_CLI_PROG: ContextVar[str | None] = ContextVar("facd_cli_prog", default=None)

#: API keyword -> CLI flag, where the flag is not ``--`` + the keyword with ``_`` -> ``-``.
_FLAGS = {"overlap": "--tile-overlap"}

_NO_VALUE = object()
_PACKAGE_DIR = str(Path(__file__).resolve().parent)


class UntrainedWeightsWarning(UserWarning):
    """A preset was loaded without a checkpoint: its weights are random."""


@contextmanager
def cli_wording(prog: str) -> Iterator[None]:
    """Inside this block messages use CLI flags and warnings print ``PROG: warning: ...``."""
    token = _CLI_PROG.set(prog)
    try:
        yield
    finally:
        _CLI_PROG.reset(token)


def in_cli() -> bool:
    return _CLI_PROG.get() is not None


def option(name: str, value: object = _NO_VALUE) -> str:
    """``name`` (an API keyword) as the caller writes it, with ``value`` if given.

    API: ``scale=`` / ``precision='fp32'``; CLI: ``--scale`` / ``--precision fp32``.
    """
    if in_cli():
        flag = _FLAGS.get(name, "--" + name.replace("_", "-"))
        return flag if value is _NO_VALUE else f"{flag} {value}"
    return f"{name}=" if value is _NO_VALUE else f"{name}={value!r}"


def _caller_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside the facd package, seen from :func:`warn`."""
    level = 2  # warn's caller (1 would be warn itself)
    frame: FrameType | None = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """One stderr line under the CLI; ``warnings.warn`` at the user's call site otherwise."""
    prog = _CLI_PROG.get()
    if prog is not None:
        print(f"{prog}: warning: {message}", file=sys.stderr, flush=True)
        return
    warnings.warn(message, category, stacklevel=_caller_stacklevel())


def untrained_message(name: str) -> str:
    return (
        f"{name!r} is a preset without a checkpoint: its weights are random and its output is "
        "meaningless; give a trained checkpoint (.safetensors, official .pt or BasicSR .pth) "
        "for real results"
    )
