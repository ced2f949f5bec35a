"""Cell formatting, exactly as the papers print: half-to-even rounding, two decimals, signed deltas, 35.4k, 14.5x.

Every formatter takes a float (NaN / None = missing) and returns a string. Rounding goes through
Decimal from the value printed to 9 decimals, so float noise (26.650000000000002) cannot flip a
half-way case; halves round to even (the rule of paper_numbers/README.md: 3.25 -> 3.2, 3.75 -> 3.8).
"""
from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal

MISSING = "—"      # display cell the run cannot fill
CSV_MISSING = ""   # the same cell in a CSV


def is_missing(x) -> bool:
    """None or NaN."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def round_half_even(x: float, decimals: int) -> Decimal:
    """x rounded half-to-even to `decimals` places (float noise below 1e-9 ignored)."""
    return Decimal(f"{float(x):.9f}").quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN)


def rounded(x: float, decimals: int) -> float:
    """round_half_even as a float (NaN stays NaN)."""
    return float("nan") if is_missing(x) else float(round_half_even(x, decimals))


def csv_number(x, decimals: int) -> str:
    """The published CSVs' style: rounded, then the shortest float text (47.60 -> '47.6', 47 -> '47.0')."""
    if is_missing(x):
        return CSV_MISSING
    q = float(round_half_even(x, decimals))
    return repr(q + 0.0)  # + 0.0 turns -0.0 into 0.0


def fixed(x, decimals: int = 2, missing: str = MISSING) -> str:
    """Fixed decimals: 67.5 -> '67.50'."""
    if is_missing(x):
        return missing
    q = round_half_even(x, decimals)
    return format(q if q != 0 else abs(q), f".{decimals}f")


def signed(x, decimals: int = 2, missing: str = MISSING) -> str:
    """Signed delta: 1.38 -> '+1.38', -0.23 -> '-0.23', 0 -> '0.00'."""
    if is_missing(x):
        return missing
    q = round_half_even(x, decimals)
    body = format(abs(q), f".{decimals}f")
    return ("+" if q > 0 else "-" if q < 0 else "") + body


def kilo(x_k, decimals: int = 1, missing: str = MISSING) -> str:
    """A sample count already in thousands: 35.39 -> '35.4k'; below 1k the plain count (0.04 -> '40', a toy run)."""
    if is_missing(x_k):
        return missing
    return fixed(float(x_k) * 1000.0, 0) if abs(float(x_k)) < 1 else fixed(x_k, decimals) + "k"


def times(x, decimals: int = 1, missing: str = MISSING) -> str:
    """A ratio: 14.47 -> '14.5x'."""
    return missing if is_missing(x) else fixed(x, decimals) + "x"


def samples(n, missing: str = MISSING) -> str:
    """A raw sample count: 35392 -> '35.4k', 40 -> '40'."""
    if is_missing(n):
        return missing
    return kilo(float(n) / 1000.0)


def percent(x, decimals: int = 0, missing: str = MISSING) -> str:
    """A ratio as a percentage: 0.15 -> '15%'."""
    return missing if is_missing(x) else fixed(100.0 * float(x), decimals) + "%"
