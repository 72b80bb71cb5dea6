"""Argument types shared by the commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["int_arg"]


def int_arg(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer ``low <= value <= high`` (``high=None``: no upper bound).

    Anything else is argparse's one-line usage error naming the option (exit 2), e.g.
    ``argument --batch: must be >= 1, got 0``.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse
