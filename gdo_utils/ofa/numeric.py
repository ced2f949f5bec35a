"""Exact integer helpers shared by the core split and the selection budget.

`ceil_ratio` reads the ratio as the decimal the user wrote (0.15 is 3/20), so ceil(0.15 * 100) is 15
and not 16 as float arithmetic (15.000000000000002) would give. `largest_remainder` apportions an
integer total in proportion to integer weights with exact integer arithmetic.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def ceil_ratio(ratio: float, n: int) -> int:
    """ceil(ratio * n) computed exactly on the decimal value of `ratio`."""
    return math.ceil(Fraction(repr(float(ratio))) * int(n))


def largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer shares of `total` proportional to `weights` (Hamilton); ties go to the lower index.

    Shares never exceed their weight when total <= sum(weights) (weights are integers).
    """
    w = np.asarray(weights, dtype=np.int64)
    s = int(w.sum())
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    if s == 0:
        if total:
            raise ValueError(f"cannot share {total} across zero weights")
        return np.zeros_like(w)
    num = w * int(total)
    share = num // s
    rem = num - share * s
    left = int(total) - int(share.sum())
    if left:
        order = np.lexsort((np.arange(len(w)), -rem))
        share[order[:left]] += 1
    return share
