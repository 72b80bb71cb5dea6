"""Seed statistics: mean ± std over seeds, differences paired by seed, and the verdict rules.

Every verdict in the reports rests on the 95 % Student-t interval of the mean paired difference
(:meth:`Diff.ci95`, ``mean ± t_{0.975, n-1} · std / sqrt(n)``) and needs n >= 2 paired seeds;
one seed gives no verdict (:data:`ONE_SEED`). There is no "negligible" floor: the paper's own
effects go down to 0.009-0.016 dB (Eq. 6 vs Eq. 7), so a fixed floor would decide claims the
data cannot decide.

- Against zero (:meth:`Diff.vs_zero`): the interval lies above 0, below 0, or includes 0.
- Against the paper's difference ``p`` (:meth:`Diff.vs_paper`, :data:`PAPER_RULE`): the
  interval contains both 0 and ``p``: "cannot resolve"; it excludes 0 on the side of ``p`` and
  contains ``p``: "reproduced"; it excludes 0 on the side of ``p`` but not ``p``: "same sign,
  size differs (smaller)" or "(larger)"; it excludes 0 on the other side: "reversed"; it
  contains 0 but not ``p``: "not reproduced".
- A claim without a paper number (:meth:`Diff.vs_sign`, :data:`SIGN_RULE`) is judged on its
  sign only: above 0 "holds (sign only)", below 0 "reversed", else "includes 0, no paper value".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: The verdict of a difference measured on one seed only.
ONE_SEED = "one seed: no verdict"
REPRODUCED = "reproduced"
CANNOT_RESOLVE = "cannot resolve"
NOT_REPRODUCED = "not reproduced"
REVERSED = "reversed"
SMALLER = "same sign, size differs (smaller)"
LARGER = "same sign, size differs (larger)"
HOLDS = "holds (sign only)"
NO_PAPER = "includes 0, no paper value"

#: The order verdicts are counted in (reversed first).
VERDICTS = (
    REVERSED,
    NOT_REPRODUCED,
    SMALLER,
    LARGER,
    REPRODUCED,
    CANNOT_RESOLVE,
    HOLDS,
    NO_PAPER,
    ONE_SEED,
)

PAPER_RULE = (
    "with n >= 2 paired seeds, the 95 % Student-t interval of our mean difference is compared "
    "with 0 and with the paper's difference p: it contains both 0 and p: *cannot resolve*; it "
    "excludes 0 on the side of p and contains p: *reproduced*; it excludes 0 on the side of p "
    "but not p: *same sign, size differs* (smaller or larger than p); it excludes 0 on the "
    "other side: *reversed*; it contains 0 but not p: *not reproduced*. One seed: *no verdict*"
)
SIGN_RULE = (
    "a claim without a paper number is judged on its sign: interval above 0: *holds (sign "
    "only)*; below 0: *reversed*; otherwise *includes 0, no paper value*"
)


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

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return mean(self.values)

    @property
    def std(self) -> float | None:
        return std(self.values)

    def ci95(self) -> tuple[float, float] | None:
        """The 95 % t-interval of the mean paired difference (None below two seeds):
        ``mean ± t_{0.975, n-1} * std / sqrt(n)``."""
        if self.n < 2:
            return None
        half = t_quantile(0.975, self.n - 1) * (self.std or 0.0) / math.sqrt(self.n)
        return self.mean - half, self.mean + half

    def vs_zero(self) -> str:
        """ "above 0", "below 0" or "includes 0" by the 95 % interval; :data:`ONE_SEED` below
        two seeds."""
        ci = self.ci95()
        if ci is None:
            return ONE_SEED
        if ci[0] > 0:
            return "above 0"
        if ci[1] < 0:
            return "below 0"
        return "includes 0"

    def vs_paper(self, paper: float) -> str:
        """The verdict against the paper's difference ``paper`` (:data:`PAPER_RULE`)."""
        ci = self.ci95()
        if ci is None:
            return ONE_SEED
        lo, hi = ci
        has_zero, has_paper = lo <= 0.0 <= hi, lo <= paper <= hi
        if has_zero:
            return CANNOT_RESOLVE if has_paper else NOT_REPRODUCED
        if (paper > 0 and lo > 0) or (paper < 0 and hi < 0):
            if has_paper:
                return REPRODUCED
            return SMALLER if abs(self.mean) < abs(paper) else LARGER
        return REVERSED  # excludes 0 on the other side of the paper (or the paper's is 0)

    def vs_sign(self) -> str:
        """The verdict of a claim ``a - b > 0`` without a paper number (:data:`SIGN_RULE`)."""
        zero = self.vs_zero()
        return {"above 0": HOLDS, "below 0": REVERSED, "includes 0": NO_PAPER}.get(zero, zero)

    def verdict(self) -> str:
        """Against zero, in words: better / worse / includes 0 (the 95 % interval)."""
        return {
            "above 0": "better (95 % interval above 0)",
            "below 0": "worse (95 % interval below 0)",
            "includes 0": "95 % interval includes 0",
        }.get(self.vs_zero(), ONE_SEED)


def paired(a: dict[int, float], b: dict[int, float]) -> Diff | None:
    """``a - b`` over the seeds both have (None if they share none)."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    return Diff(tuple(a[s] - b[s] for s in seeds), tuple(seeds))


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
