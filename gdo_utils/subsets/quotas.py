"""Quotas and composition constraints of a goal preset (GDO_METHOD.md section 5)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..apportion import ceil_tol, floor_tol, largest_remainder
from .profiles import Profile

SOURCE_FLOOR_SHARE = 0.7


def bucket_quotas(buckets: pd.Series, target: int) -> dict[str, int]:
    """Quota per bucket, proportional to the pool's bucket counts."""
    counts = buckets.value_counts().sort_index()
    q = largest_remainder(counts.to_numpy().astype(np.int64), target)
    return {str(k): int(v) for k, v in zip(counts.index, q)}


def video_limits(profile: Profile, target: int, video_quota: int) -> dict[str, int]:
    """min_video, max_video and the temporal-video floor (Temporal and Mixed count)."""
    min_video = ceil_tol(profile.min_video_ratio * target)
    max_video = max(min_video, floor_tol(profile.max_video_ratio * target))
    min_temporal = ceil_tol(profile.min_temporal_in_video_ratio * max(min_video, video_quota))
    return {"min_video": min_video, "max_video": max_video, "video_quota": int(video_quota),
            "min_temporal_video": min_temporal}


def source_group_floors(group_counts: pd.Series, target: int, profile: Profile) -> dict:
    """Floors for the top-K source groups (kept when <= floor(expected); scaled to floor(0.7*target)).

    required = max(max(1, ceil(target*MIN_SOURCE_GROUP_RATIO)), ceil(FLOOR_FRAC*expected)),
    expected = target * count/N. When the kept floors sum above floor(0.7*target) each becomes
    max(1, floor(required * floor(0.7*target) / sum)).
    """
    n = int(group_counts.sum())
    ordered = group_counts.sort_index().sort_values(ascending=False, kind="stable")
    top = ordered.head(profile.source_group_floor_topk)
    rows, floors = [], {}
    base_req = max(1, ceil_tol(target * profile.min_source_group_ratio))
    for g, c in top.items():
        expected = target * int(c) / n if n else 0.0
        required = max(base_req, ceil_tol(profile.floor_frac_of_expected * expected))
        kept = required <= floor_tol(expected)
        rows.append({"group": str(g), "pool": int(c), "expected": expected, "required": required, "kept": kept})
        if kept:
            floors[str(g)] = required
    total, limit = sum(floors.values()), floor_tol(SOURCE_FLOOR_SHARE * target)
    scaled = total > limit
    if scaled and total > 0:
        floors = {g: max(1, floor_tol(r * limit / total)) for g, r in floors.items()}
    for r in rows:
        r["floor"] = floors.get(r["group"], 0)
    return {"floors": floors, "table": rows, "sum_before_scaling": total, "limit": limit, "scaled": scaled}


def stratum_caps(quotas: np.ndarray, is_video_stratum: np.ndarray, is_temporal_video_stratum: np.ndarray,
                 profile: Profile) -> np.ndarray:
    """Per-stratum candidate caps ceil(quota * m) with m raised for video and Temporal-video strata."""
    m = np.full(len(quotas), profile.oversample)
    m = np.where(is_video_stratum, np.maximum(m, profile.video_oversample), m)
    m = np.where(is_temporal_video_stratum, np.maximum(m, profile.temporal_oversample), m)
    return np.ceil(quotas * m - 1e-9).astype(np.int64)
