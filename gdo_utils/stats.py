"""Shared statistics of the descriptors and the score (a bottom-level module: imports numpy only).

Robust z-scores, a stable sigmoid, and the level-2 mean/std z-score with the release's and the kit's
standard deviation.

The robust z-score is the one GDO_METHOD.md section 4 defines for level 1 of the score and that
section 3 uses for the SC fallback: center = median, scale = IQR / 1.349 (the IQR of a unit normal is
1.349, so the scale estimates the standard deviation), floored at 1e-6 so a constant column gives
zeros instead of a division by zero. NaNs are ignored when estimating and stay NaN in the output.
"""
from __future__ import annotations

import numpy as np

IQR_TO_SIGMA = 1.349
SCALE_FLOOR = 1e-6


def robust_z(x: np.ndarray | list[float], floor: float = SCALE_FLOOR) -> np.ndarray:
    """Robust z-score (x - median) / max(IQR/1.349, floor), NaN-aware: NaN in -> NaN out (float64)."""
    a = np.asarray(x, dtype=np.float64)
    out = np.full(a.shape, np.nan, dtype=np.float64)
    finite = np.isfinite(a)
    if not finite.any():
        return out
    vals = a[finite]
    center = float(np.median(vals))
    q75, q25 = np.percentile(vals, [75.0, 25.0])
    scale = max(float(q75 - q25) / IQR_TO_SIGMA, floor)
    out[finite] = (vals - center) / scale
    # +-inf inputs keep their sign (an infinite value is infinitely far from the centre), NaN stays NaN.
    inf = np.isinf(a)
    out[inf] = a[inf]
    return out


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    """Logistic function 1/(1+exp(-x)), computed as 0.5*(1+tanh(x/2)) to avoid overflow; NaN stays NaN."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def standard_z(x: np.ndarray, clip: float = 4.0, *, ref: np.ndarray | None = None, std: str = "population") -> np.ndarray:
    """(x - mean) / sd over the finite values of `ref` (default `x`), clipped to +-clip; NaN stays NaN.

    std="population": sd with ddof 0, and a constant reference (sd < 1e-12) gives z = 0.
    std="sample" (the release's running statistics): sd with ddof 1, replaced by 1.0 when there is at most
    one value or the variance is <= 1e-12.
    """
    x = np.asarray(x, dtype=float)
    r = x if ref is None else np.asarray(ref, dtype=float)
    r = r[np.isfinite(r)]
    if not len(r):
        return np.full(x.shape, np.nan)
    mean = float(r.mean())
    if std == "sample":
        var = float(((r - mean) ** 2).sum() / (len(r) - 1)) if len(r) > 1 else 0.0
        sd = float(np.sqrt(var)) if var > 1e-12 else 1.0
        z = (x - mean) / sd
    elif std == "population":
        sd = float(r.std())
        z = (x - mean) / sd if sd >= 1e-12 else np.where(np.isfinite(x), 0.0, np.nan)
    else:
        raise ValueError(f"std must be 'sample' or 'population', got {std!r}")
    return np.clip(z, -clip, clip)
