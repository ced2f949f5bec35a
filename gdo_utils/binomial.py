"""Accuracy uncertainty (a bottom-level module: imports math only): Wilson intervals, chance levels, above-chance verdicts.

An accuracy measured on n questions is a binomial proportion. `wilson_interval` gives its 95% Wilson score
interval (Wilson 1927; better coverage than the normal approximation at small n and near 0 or 1).
`chance_level` is the expected accuracy of uniform guessing: the mean over the questions of 1 / their option
count (a 4-way benchmark gives 25%). `chance_verdict` says whether an accuracy is above chance, is not, or
whether n is too small to tell (the interval reaches down to chance) - the test a headline such as the peak
match needs before it can be stated. Accuracies are in percent throughout, as the trajectory table stores them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

Z95 = 1.959963984540054  # two-sided 95% normal quantile
INTERVAL_METHOD = "Wilson score interval, 95%"


def wilson_interval(accuracy_pct: float, n: int, z: float = Z95) -> tuple[float, float]:
    """(low, high) in percent of the Wilson score interval of `accuracy_pct` on n trials; (nan, nan) when n < 1."""
    if n is None or n < 1 or accuracy_pct is None or math.isnan(accuracy_pct):
        return float("nan"), float("nan")
    p = min(max(float(accuracy_pct) / 100.0, 0.0), 1.0)
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)


def chance_level(option_counts: Iterable[int]) -> float:
    """Expected accuracy (percent) of uniform guessing: mean of 100 / k over the questions' option counts k."""
    ks = [int(k) for k in option_counts]
    if not ks:
        return float("nan")
    if min(ks) < 1:
        raise ValueError(f"an option count below 1 ({min(ks)}): a question needs at least one option")
    return 100.0 * sum(1.0 / k for k in ks) / len(ks)


@dataclass(frozen=True)
class ChanceVerdict:
    """Whether an accuracy on n questions is above a chance level, with its interval and a one-line reason."""

    accuracy: float
    n: int
    chance: float
    low: float
    high: float
    above: bool
    reason: str


def chance_verdict(accuracy_pct: float, n: int, chance_pct: float) -> ChanceVerdict:
    """above = the whole 95% Wilson interval lies above chance; otherwise `reason` says why not."""
    low, high = wilson_interval(accuracy_pct, n)
    if accuracy_pct is None or math.isnan(accuracy_pct) or not n:
        return ChanceVerdict(float("nan"), int(n or 0), chance_pct, low, high, False, "no accuracy (not evaluated)")
    if chance_pct is None or math.isnan(chance_pct):
        return ChanceVerdict(accuracy_pct, n, float("nan"), low, high, False,
                             "chance level unknown (the benchmark's questions could not be read)")
    if accuracy_pct <= chance_pct:
        reason = f"{accuracy_pct:.2f}% is not above chance ({chance_pct:.2f}%, n = {n})"
        return ChanceVerdict(accuracy_pct, n, chance_pct, low, high, False, reason)
    if low <= chance_pct:
        reason = (f"n = {n} is too small to tell {accuracy_pct:.2f}% from chance ({chance_pct:.2f}%): "
                  f"95% interval {low:.1f}-{high:.1f}%")
        return ChanceVerdict(accuracy_pct, n, chance_pct, low, high, False, reason)
    return ChanceVerdict(accuracy_pct, n, chance_pct, low, high, True,
                         f"above chance ({chance_pct:.2f}%): 95% interval {low:.1f}-{high:.1f}%, n = {n}")


def format_accuracy(accuracy_pct: float, n: int, decimals: int = 2) -> str:
    """'55.00 (n=20, 95% CI 34.2-74.2)'; '—' when missing."""
    if accuracy_pct is None or math.isnan(accuracy_pct):
        return "—"
    low, high = wilson_interval(accuracy_pct, n)
    if math.isnan(low):
        return f"{accuracy_pct:.{decimals}f} (n={n})"
    return f"{accuracy_pct:.{decimals}f} (n={n}, 95% CI {low:.1f}-{high:.1f})"
