"""User-facing errors: one line, naming the offending file, key or value."""

from __future__ import annotations


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
