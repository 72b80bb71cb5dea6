"""How the report writes its numbers in Markdown: table cells, intervals and counts in words.

A difference ``d`` (:class:`facd.reproduce.stats.Diff`) is written as its mean ± the sample std
of the paired per-seed differences (:func:`diff_cell`), or as its mean with its 95 % Student-t
interval (:func:`ci_cell`, :func:`ci_text`); its verdict against 0 follows :data:`ZERO_RULE`
(:func:`verdict_short`).
"""

from __future__ import annotations

from facd.reproduce.stats import ONE_SEED, Diff, fmt_pm

#: The rule of the verdicts against 0 (main table, ablations, Table 13 analogue).
ZERO_RULE = (
    "the 95 % Student-t interval of the mean paired difference over n >= 2 seeds: above 0: "
    "**better**; below 0: **worse**; otherwise *includes 0*. One seed: *no verdict* (no "
    "spread to judge it by). There is no 'negligible' floor: the paper's own effects go "
    "down to 0.009-0.016 dB (Eq. 6 vs Eq. 7)"
)


#: How many evaluation sets, in words ("mean of the four sets").
_COUNT = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven"}


def sets_mean(n: int) -> str:
    return f"mean of the {_COUNT.get(n, str(n))} set{'s' if n != 1 else ''}"


def md(text: str) -> str:
    """``text`` with Markdown's emphasis marks escaped (for labels inside bold text)."""
    return text.replace("*", "\\*")


def diff_cell(d: Diff | None, digits: int = 2) -> str:
    if d is None:
        return "–"
    text = fmt_pm(d.mean, d.std, digits, signed=True)
    return f"{text} (n={d.n})" if d.n > 1 else f"{text} (1 seed)"


def ci_cell(d: Diff, digits: int = 3) -> str:
    """``+0.076 [+0.061, +0.091] (n=3)``: the mean and its 95 % t-interval."""
    ci = d.ci95()
    if ci is None:
        return f"{d.mean:+.{digits}f} (1 seed)"
    return f"{d.mean:+.{digits}f} [{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}] (n={d.n})"


def ci_text(d: Diff) -> str:
    """``-0.021 dB (95 % interval -0.028 to -0.015, n=3)``."""
    ci = d.ci95()
    if ci is None:
        return f"{d.mean:+.3f} dB (1 seed)"
    return f"{d.mean:+.3f} dB (95 % interval {ci[0]:+.3f} to {ci[1]:+.3f}, n={d.n})"


def verdict_short(d: Diff | None) -> str:
    """The verdict against 0 in a table cell that already shows n (:data:`ZERO_RULE`)."""
    if d is None:
        return "–"
    words = {"above 0": "**better**", "below 0": "**worse**", ONE_SEED: "no verdict"}
    return words.get(d.vs_zero(), d.vs_zero())


def pct(fraction: float) -> str:
    """A fraction in per cent, two significant digits below 10 % (0.4, 0.04, 4.3), else whole."""
    v = 100 * fraction
    return f"{v:.0f}" if v >= 10 else f"{v:.2g}"


def alpha_claims(n: int) -> str:
    """``the claim that depends`` / ``the 2 claims that depend`` on the adaptive indicator."""
    what = "the claim that depends" if n == 1 else f"the {n} claims that depend"
    return f"{what} on the adaptive indicator"


def seeds_text(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def zero_words(d: Diff) -> str:
    """Where the 95 % interval lies against 0, in words."""
    return {
        "above 0": "above 0",
        "below 0": "below 0",
        "includes 0": "includes 0",
    }.get(d.vs_zero(), "one seed, no interval")


def fmt_int(v: int | None) -> str:
    return f"{v:,}" if isinstance(v, int) else "?"


def inline_dict(d: dict) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"
