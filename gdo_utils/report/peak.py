"""Peak match (the GDO paper's definition): when does the GDO curve reach the Uni-10x end accuracy?

R = the Uni-10x accuracy at its last checkpoint; the peak-match point is the first sample count
where the GDO curve, linearly interpolated between its checkpoints, reaches R; reduction = the
Uni-10x sample count (512k in the paper) / peak match. A curve whose first checkpoint is already at
or above R has no earlier point to interpolate from: the first checkpoint is returned (an upper
bound, flagged `at_first_checkpoint`); a curve that never reaches R has no peak match (NaN).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PeakMatch:
    """The interpolated sample count (NaN when R is never reached) and how it was found."""

    samples: float
    target: float
    reached: bool
    at_first_checkpoint: bool
    segment: tuple[float, float] | None  # the two checkpoints interpolated between


def peak_match(samples, accuracy, target: float) -> PeakMatch:
    """First sample count where the piecewise-linear curve (samples ascending) reaches `target`."""
    x = np.asarray(samples, dtype=np.float64)
    y = np.asarray(accuracy, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"samples and accuracy must be 1-d of one length, got {x.shape} and {y.shape}")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if len(x) == 0 or math.isnan(target):
        return PeakMatch(float("nan"), target, False, False, None)
    if y[0] >= target:
        return PeakMatch(float(x[0]), target, True, True, None)
    for i in range(1, len(x)):
        if y[i] >= target:
            if y[i] == target:  # exactly at a checkpoint: that checkpoint, free of interpolation round-off
                value = float(x[i])
            else:
                value = float(x[i - 1] + (target - y[i - 1]) / (y[i] - y[i - 1]) * (x[i] - x[i - 1]))
            return PeakMatch(value, target, True, False, (float(x[i - 1]), float(x[i])))
    return PeakMatch(float("nan"), target, False, False, None)


def reduction(reference_samples: float, peak_samples: float) -> float:
    """reference (Uni-10x) samples / peak-match samples (NaN when either is missing or zero)."""
    if math.isnan(reference_samples) or math.isnan(peak_samples) or peak_samples <= 0:
        return float("nan")
    return float(reference_samples) / float(peak_samples)


def quarter_epochs(size_1x: float, n: int = 4) -> np.ndarray:
    """Checkpoint positions at 1/n, 2/n, ..., 1 epoch of a subset of `size_1x` samples."""
    return np.arange(1, n + 1, dtype=np.float64) * float(size_1x) / n
