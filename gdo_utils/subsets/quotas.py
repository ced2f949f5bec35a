"""Quotas and composition constraints of a goal preset (GDO_METHOD.md section 5).

Two behaviour options shape the arithmetic here (`subsets.rounding`, `subsets.tie_order`):
* rounding "float" (release): ceil/floor of plain floating-point products, in the release's order of
  operations (floor(100000 * 0.018) = 1799, quotas as floor(target * (count / total)) with the remainder
  to the largest fractional parts); "tolerance" (kit): exact integer apportionment and a 1e-9 tolerance
  (1800).
* tie_order "first_seen" (release): equal remainders, and source groups of equal size in the top-K, go
  in order of first appearance in the pool files; "sorted" (kit): in sorted label order.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..apportion import ceil_tol, floor_tol, largest_remainder
from .profiles import Profile

SOURCE_FLOOR_SHARE = 0.7
Rounding = str  # "float" | "tolerance"


def ceil_r(x: float, rounding: Rounding) -> int:
    """ceil(x): plain float (release) or with the 1e-9 tolerance (kit)."""
    return int(math.ceil(x)) if rounding == "float" else ceil_tol(x)


def floor_r(x: float, rounding: Rounding) -> int:
    """floor(x): plain float (release) or with the 1e-9 tolerance (kit)."""
    return int(math.floor(x)) if rounding == "float" else floor_tol(x)


def apportion(counts: np.ndarray, target: int, rounding: Rounding) -> np.ndarray:
    """Quotas proportional to `counts` summing to `target`; remainder ties go to the earlier index.

    float: q = floor(target * (c / total)), the rest one each by decreasing float remainder (the
    release's target_quotas); tolerance: exact largest remainder in integers.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if rounding != "float":
        return largest_remainder(counts, int(target))
    total = int(counts.sum())
    if total <= 0 or len(counts) == 0:
        return np.zeros(len(counts), np.int64)
    raw = [target * (int(c) / float(total)) for c in counts.tolist()]
    quota = [int(math.floor(v)) for v in raw]
    remain = int(target) - sum(quota)
    if remain > 0:
        order = sorted(range(len(raw)), key=lambda i: raw[i] - quota[i], reverse=True)  # stable: earlier first
        for i in range(remain):
            quota[order[i % len(order)]] += 1
    return np.asarray(quota, dtype=np.int64)


def apportion_in_order(counts: np.ndarray, target: int, rounding: Rounding, order: np.ndarray) -> np.ndarray:
    """`apportion` with the keys visited in `order` (ties to the earlier key of that order); quotas by key."""
    order = np.asarray(order, dtype=np.int64)
    out = np.zeros(len(counts), np.int64)
    out[order] = apportion(np.asarray(counts)[order], target, rounding)
    return out


def bucket_quotas(buckets: pd.Series, target: int, rounding: Rounding = "tolerance",
                  tie_order: str = "sorted") -> dict[str, int]:
    """Quota per bucket, proportional to the pool's bucket counts (keys in the tie order)."""
    counts = buckets.value_counts(sort=False)
    labels = list(pd.unique(buckets)) if tie_order == "first_seen" else sorted(counts.index)
    c = np.array([int(counts[b]) for b in labels], dtype=np.int64)
    q = apportion(c, target, rounding)
    return {str(k): int(v) for k, v in zip(labels, q)}


def video_limits(profile: Profile, target: int, video_quota: int, rounding: Rounding = "tolerance") -> dict[str, int]:
    """min_video, max_video and the temporal-video floor (Temporal and Mixed count)."""
    min_video = ceil_r(profile.min_video_ratio * target, rounding)
    max_video = max(min_video, min(floor_r(profile.max_video_ratio * target, rounding), target))
    min_temporal = min(ceil_r(profile.min_temporal_in_video_ratio * max(min_video, video_quota), rounding), target)
    return {"min_video": min_video, "max_video": max_video, "video_quota": int(video_quota),
            "min_temporal_video": max(0, min_temporal)}


def source_group_floors(group_counts: pd.Series, target: int, profile: Profile, rounding: Rounding = "tolerance",
                        first_seen: list[str] | None = None) -> dict:
    """Floors for the top-K source groups (kept when <= floor(expected); scaled to floor(0.7*target)).

    required = max(max(1, ceil(target*MIN_SOURCE_GROUP_RATIO)), ceil(FLOOR_FRAC*expected)),
    expected = target * count/N. When the kept floors sum above floor(0.7*target) each becomes
    max(1, floor(required * floor(0.7*target) / sum)). The floors dict is in top-K order: by decreasing
    count, equal counts in `first_seen` order when given (release) else by label.
    """
    n = int(group_counts.sum())
    if first_seen is not None:
        base = group_counts.reindex([g for g in first_seen if g in group_counts.index])
    else:
        base = group_counts.sort_index()
    ordered = base.sort_values(ascending=False, kind="stable")
    top = ordered.head(profile.source_group_floor_topk)
    rows, floors = [], {}
    base_req = max(1, ceil_r(target * profile.min_source_group_ratio, rounding))
    for g, c in top.items():
        expected = target * (int(c) / float(n)) if n else 0.0
        required = max(base_req, ceil_r(max(0.0, profile.floor_frac_of_expected) * expected, rounding))
        kept = required <= floor_r(expected, rounding)
        rows.append({"group": str(g), "pool": int(c), "expected": expected, "required": required, "kept": kept})
        if kept:
            floors[str(g)] = required
    total, limit = sum(floors.values()), floor_r(SOURCE_FLOOR_SHARE * target, rounding)
    scaled = total > limit
    if limit <= 0:
        floors = {}
    elif scaled and total > 0:
        if rounding == "float":
            scale = limit / float(total)
            floors = {g: max(1, int(math.floor(r * scale))) for g, r in floors.items()}
        else:
            floors = {g: max(1, floor_tol(r * limit / total)) for g, r in floors.items()}
    for r in rows:
        r["floor"] = floors.get(r["group"], 0)
    return {"floors": floors, "table": rows, "sum_before_scaling": total, "limit": limit, "scaled": scaled}


def stratum_caps(quotas: np.ndarray, is_video_stratum: np.ndarray, is_temporal_video_stratum: np.ndarray,
                 profile: Profile, rounding: Rounding = "tolerance") -> np.ndarray:
    """Per-stratum candidate caps ceil(quota * m) with m raised for video and temporal-video strata.

    `is_temporal_video_stratum` marks the strata TEMPORAL_OVERSAMPLE applies to (the caller decides:
    Temporal and Mixed video strata in the release, Temporal only in the kit). A zero quota gives cap 0.
    """
    q = np.asarray(quotas, dtype=np.int64)
    m = np.full(len(q), max(profile.oversample, 1.0))
    m = np.where(is_video_stratum, np.maximum(m, profile.video_oversample), m)
    m = np.where(is_temporal_video_stratum, np.maximum(m, profile.temporal_oversample), m)
    if rounding == "float":
        caps = np.array([max(int(a), int(math.ceil(a * b))) if a > 0 else 0 for a, b in zip(q.tolist(), m.tolist())],
                        dtype=np.int64)
        return caps.reshape(len(q))
    return np.ceil(q * m - 1e-9).astype(np.int64)
