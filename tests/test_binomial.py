"""gdo_utils.binomial (Wilson intervals, chance levels, above-chance verdicts) and the report's chance levels from a
benchmark's option counts. Expected values worked out by hand in the comments."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from gdo_utils.binomial import benchmark_chance, chance_level, chance_verdict, format_accuracy, wilson_interval


def test_wilson_interval_by_hand():
    # 10 of 20: centre (0.5 + 1.9208/20) / (1 + 3.8415/20) = 0.5; half 1.96/1.19207 * sqrt(0.0125 + 3.8415/1600)
    # = 1.64424 * 0.122069 = 0.20071 -> 29.93 .. 70.07
    lo, hi = wilson_interval(50.0, 20)
    assert lo == pytest.approx(29.93, abs=0.01) and hi == pytest.approx(70.07, abs=0.01)
    # 0 of 10: upper = 2 * (3.8415/20) / (1 + 3.8415/10) = 0.38415 / 1.38415 = 27.75%
    lo, hi = wilson_interval(0.0, 10)
    assert lo == 0.0 and hi == pytest.approx(27.75, abs=0.01)
    assert all(math.isnan(x) for x in wilson_interval(50.0, 0))


def test_chance_level_from_option_counts():
    assert chance_level([4, 4, 4]) == 25.0
    assert chance_level([2, 4]) == pytest.approx(37.5)  # (50 + 25) / 2
    assert math.isnan(chance_level([]))
    with pytest.raises(ValueError, match="option count"):
        chance_level([0])


def test_chance_verdicts():
    assert chance_verdict(55.0, 200, 25.0).above                     # 48.1-61.7 lies above 25
    at = chance_verdict(0.0, 16, 25.0)                                  # the demo's Uni-10x: 0 of 16
    assert not at.above and "not above chance" in at.reason and "n = 16" in at.reason
    small = chance_verdict(30.0, 10, 25.0)                               # Wilson 10.8-60.3 reaches below 25
    assert not small.above and "too small to tell" in small.reason
    assert "unknown" in chance_verdict(60.0, 100, float("nan")).reason
    assert format_accuracy(50.0, 20) == "50.00 (n=20, 95% CI 29.9-70.1)"


def _q(k: int, subtask: str = "", task_type: str = "") -> SimpleNamespace:
    return SimpleNamespace(option_texts=("x",) * k, subtask=subtask, task_type=task_type, question_types=())


def test_benchmark_chance_follows_the_overall_metric():
    qs = [_q(2, "a"), _q(4, "b"), _q(4, "b"), _q(4, "b")]
    micro = benchmark_chance(qs, ("subtask",), "micro")
    assert micro["a"] == 50.0 and micro["b"] == 25.0 and micro[""] == pytest.approx(31.25)  # (50 + 3*25) / 4
    mean = benchmark_chance(qs, ("subtask",), "mean:subtask")
    assert mean[""] == pytest.approx(37.5)  # the mean of the subtasks' chances, as the overall is their mean
