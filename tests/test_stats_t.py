"""Student's t quantiles and the 95 % interval of a paired difference, against textbook values and
a hand-computed case."""

from __future__ import annotations

import math

import pytest

from facd.reproduce.stats import Diff, t_cdf, t_quantile

# two-sided 95 % critical values t_{0.975, df} (standard tables)
TABLE = {
    1: 12.706204736,
    2: 4.302652730,
    3: 3.182446305,
    4: 2.776445105,
    5: 2.570581836,
    9: 2.262157163,
    10: 2.228138852,
    30: 2.042272456,
    100: 1.983971519,
}


@pytest.mark.parametrize("df", sorted(TABLE))
def test_t_quantile_matches_tables(df: int) -> None:
    assert abs(t_quantile(0.975, df) - TABLE[df]) < 1e-6
    assert abs(t_quantile(0.025, df) + TABLE[df]) < 1e-6


def test_t_cdf_known_values() -> None:
    assert abs(t_cdf(0.0, 3) - 0.5) < 1e-12
    # df = 1 is the Cauchy distribution: F(t) = 1/2 + atan(t)/pi
    for t in (-3.0, -0.5, 0.7, 10.0):
        assert abs(t_cdf(t, 1) - (0.5 + math.atan(t) / math.pi)) < 1e-10
    # df = 2 has a closed form: F(t) = 1/2 + t / (2 sqrt(2 + t^2))
    for t in (-2.0, 0.3, 4.0):
        assert abs(t_cdf(t, 2) - (0.5 + t / (2 * math.sqrt(2 + t * t)))) < 1e-10


def test_t_quantile_agrees_with_scipy_where_available() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 4, 7, 19, 60):
        for p in (0.9, 0.975, 0.995):
            assert abs(t_quantile(p, df) - float(stats.t.ppf(p, df))) < 1e-8


def test_ci95_hand_computed() -> None:
    # differences 0.10, 0.20, 0.30: mean 0.2, std 0.1, half width 4.3027 * 0.1 / sqrt(3)
    d = Diff((0.10, 0.20, 0.30), (0, 1, 2))
    lo, hi = d.ci95() or (0.0, 0.0)
    half = 4.302652730 * 0.1 / math.sqrt(3)
    assert abs(lo - (0.2 - half)) < 1e-9 and abs(hi - (0.2 + half)) < 1e-9
    assert Diff((0.5,), (0,)).ci95() is None
    with pytest.raises(ValueError, match="df >= 1"):
        t_quantile(0.975, 0)
