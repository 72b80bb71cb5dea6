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

    def ci95(self) -> tuple[float, float] | None:
        """The 95 % t-interval of the mean paired difference (None below two seeds):
        ``mean ± t_{0.975, n-1} * std / sqrt(n)``."""
        if self.n < 2:
            return None
        half = t_quantile(0.975, self.n - 1) * (self.std or 0.0) / math.sqrt(self.n)
        return self.mean - half, self.mean + half

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


# ------------------------------------------------------------------ Student's t distribution


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` >= 1 degrees of freedom (bisection on
    :func:`t_cdf` to 1e-12; e.g. ``t_quantile(0.975, 4) = 2.776``)."""
    if not 0.0 < p < 1.0 or df < 1:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df >= 1, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    while hi - lo > 1e-12 * max(1.0, hi):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
