"""Exact rounding and apportionment shared by the OFA selection and the GDO subset builder.

`ceil_ratio` reads a ratio as the decimal the user wrote (0.15 is 3/20), so ceil(0.15 * 100) is 15 and
not 16 as float arithmetic (15.000000000000002) would give; `ceil_tol` / `floor_tol` round products of
counts and ratios with a 1e-9 tolerance; `largest_remainder` apportions an integer total in proportion
to weights (Hamilton's method, exact integer arithmetic for integer weights).
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

TOLERANCE = 1e-9


def ceil_ratio(ratio: float, n: int) -> int:
    """ceil(ratio * n) computed exactly on the decimal value of `ratio`."""
    return math.ceil(Fraction(repr(float(ratio))) * int(n))


def ceil_tol(x: float) -> int:
    """ceil with a tolerance for floating-point noise (7.000000000000001 -> 7)."""
    return int(math.ceil(x - TOLERANCE))


def floor_tol(x: float) -> int:
    """floor with a tolerance for floating-point noise (6.999999999999999 -> 7)."""
    return int(math.floor(x + TOLERANCE))


def largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer quotas proportional to `weights` summing exactly to `total` (floor + largest remainder).

    Integer weights are apportioned in exact integer arithmetic; ties in the remainder go to the
    earlier index. All-zero weights give all-zero quotas (and total must then be 0).
    """
    w = np.asarray(weights)
    total = int(total)
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    if len(w) == 0 or total == 0:
        return np.zeros(len(w), np.int64)
    if (w < 0).any():
        raise ValueError("weights must be >= 0")
    if np.issubdtype(w.dtype, np.integer):
        s = int(w.sum())
        if s == 0:
            raise ValueError("weights sum to 0 but total > 0")
        if total * int(w.max()) < 2 ** 62:
            prod = total * w.astype(np.int64)
            base, rem = prod // s, prod % s
        else:  # exact Python integers for astronomically large products
            pairs = [divmod(total * int(x), s) for x in w.tolist()]
            base = np.array([b for b, _ in pairs], dtype=np.int64)
            rem = np.array([r for _, r in pairs], dtype=object)
        frac = np.asarray(rem, dtype=float) / s
    else:
        s = float(w.sum())
        if s <= 0:
            raise ValueError("weights sum to 0 but total > 0")
        exact = total * w.astype(float) / s
        base = np.floor(exact + 1e-12).astype(np.int64)
        frac = exact - base
    short = total - int(base.sum())
    if short > 0:
        order = np.lexsort((np.arange(len(w)), -frac))
        base[order[:short]] += 1
    return base
