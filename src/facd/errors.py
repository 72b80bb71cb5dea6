"""User-facing errors: one line, naming the offending file, key or value.

Every error that the command line turns into a message and an exit code is defined here (the
modules that raise them re-export the older names: ``facd.train.state.StorageError`` is
``facd.errors.StorageError``). The ``facd`` command prints ``error: <message>`` on one line, with
no traceback, and exits with the class's ``exit_code``:

======================  =====  ==========================================================
class                   exit   when
======================  =====  ==========================================================
(usage)                 1      bad command-line arguments (argparse), a failed check
FacdError               2      any other error caused by the user's input
ConfigError             2      invalid config: unknown key, wrong type, out-of-range value
RunDirBusy              2      another process holds the run folder's lock
DataError               2      unreadable, unsupported or too-small input data
CheckpointError         2      a checkpoint that cannot be loaded or does not match
NonFiniteOutputError    2      the network returned NaN or infinite values
DistillerError          2      a network or batch that ``facd.Distiller`` cannot use
TrainingDiverged        3      the loss became non-finite (``train.nan_policy``)
StorageError            4      writing a run or an output failed (disk full, read-only)
(Ctrl-C)                130    interrupted; a training run saves its state first
(SIGPIPE)               141    the reader of stdout went away (``facd methods | head -1``)
======================  =====  ==========================================================

:func:`exit_status` is that rule for a program's entry point (``facd`` and the reproduction's
job processes).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

#: Exit status after Ctrl-C (128 + SIGINT, as the shell reports it).
EXIT_INTERRUPTED = 130


class FacdError(Exception):
    """An error caused by the user's input; the CLI prints it on one line and exits non-zero."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ConfigError(FacdError):
    """Invalid configuration: unknown key, wrong type or out-of-range value."""


class DataError(FacdError):
    """Unreadable, unsupported or too-small input data."""


class CheckpointError(FacdError):
    """A checkpoint that cannot be loaded or does not match what was asked for."""


class StorageError(FacdError):
    """Writing to the run directory failed (disk full, read-only, quota)."""

    exit_code = 4


class RunDirBusy(ConfigError):
    """Another process is writing the run folder."""


class DistillerError(FacdError):
    """An argument of :class:`facd.Distiller` (a network or a batch) it cannot use."""


class TrainingDiverged(FacdError):
    """The training loss became NaN or infinite (and ``train.nan_policy`` says stop)."""

    exit_code = 3


class NonFiniteOutputError(FacdError):
    """The network returned NaN or infinite values (broken weights, or fp16 overflow)."""


def exit_status(prog: str, action: Callable[[], int | None]) -> int:
    """Run ``action`` and return its exit status (``None``: 0). A :class:`FacdError` prints
    ``PROG: error: MESSAGE`` on stderr and gives its ``exit_code``; Ctrl-C prints
    ``PROG: interrupted`` and gives 130. Anything else propagates (a bug keeps its traceback)."""
    try:
        return int(action() or 0)
    except FacdError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
