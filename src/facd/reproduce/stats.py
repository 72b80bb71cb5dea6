"""Seed statistics: mean ± std over seeds, differences paired by seed, and a plain noise rule.

The rule that calls a difference "outside the seed noise" (kept simple and stated in the
report): with n >= 2 paired seeds, every paired difference has the same sign and
``|mean| > 2 * std / sqrt(n)``; with a single seed, ``|difference| > 2 * s_ref`` where
``s_ref`` is the seed-to-seed std of the reference method (when it has >= 2 seeds).
A difference below ``NEGLIGIBLE`` (0.01 dB, the tables' last digit) is called negligible
whatever its spread: two nearly identical runs have a tiny paired std, which would otherwise
make a 0.002 dB difference "significant".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

NEGLIGIBLE = 0.01


def mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs)


def std(xs: Sequence[float]) -> float | None:
    """Sample standard deviation (n - 1); None for fewer than two values."""
    if len(xs) < 2:
        return None
    m = mean(xs)
    return math.sqrt(math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1))


@dataclass(frozen=True)
class Diff:
    """A difference ``a - b`` over paired seeds."""

    values: tuple[float, ...]
    seeds: tuple[int, ...]
    ref_std: float | None = None  # seed std of the reference, for single-seed comparisons

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return mean(self.values)

    @property
    def std(self) -> float | None:
        return std(self.values)

    @property
    def negligible(self) -> bool:
        return abs(self.mean) < NEGLIGIBLE

    @property
    def outside_noise(self) -> bool | None:
        """True/False by the module's rule; None when there is nothing to judge against."""
        if self.n >= 2:
            s = self.std or 0.0
            same_sign = all(v > 0 for v in self.values) or all(v < 0 for v in self.values)
            return same_sign and abs(self.mean) > 2.0 * s / math.sqrt(self.n)
        if self.ref_std is None:
            return None
        return abs(self.mean) > 2.0 * self.ref_std

    def verdict(self) -> str:
        if self.negligible:
            return f"negligible (|difference| < {NEGLIGIBLE:g})"
        judged = self.outside_noise
        if judged is None:
            return "one seed, no seed spread to judge against"
        if not judged:
            return "inside the seed noise"
        return (
            "better, outside the seed noise" if self.mean > 0 else "worse, outside the seed noise"
        )


def paired(a: dict[int, float], b: dict[int, float], ref_std: float | None = None) -> Diff | None:
    """``a - b`` over the seeds both have (None if they share none)."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    return Diff(tuple(a[s] - b[s] for s in seeds), tuple(seeds), ref_std)


def fmt_pm(m: float | None, s: float | None, digits: int = 2, signed: bool = False) -> str:
    """``"32.10 ± 0.03"``; the std is left out when there is none."""
    if m is None or (isinstance(m, float) and math.isnan(m)):
        return "–"
    sign = "+" if signed else ""
    text = f"{m:{sign}.{digits}f}"
    if s is not None:
        text += f" ± {s:.{digits}f}"
    return text
