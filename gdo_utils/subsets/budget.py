"""The budget rule and the VDS-aware adjustment of a goal preset (GDO_METHOD.md section 5).

All ceil/floor of products of counts and ratios go through gdo_utils.apportion (1e-9 tolerance), so
floating-point noise (e.g. 0.07 * 100 = 7.000000000000001) never adds or drops a sample.
"""
from __future__ import annotations

import logging
import math

import numpy as np

from ..apportion import ceil_tol, floor_tol
from .profiles import Profile

log = logging.getLogger(__name__)
EPS = 1e-9  # tolerance of the coverage-mass comparison


def stratum_shares(counts: np.ndarray) -> np.ndarray:
    """Shares p_s of the non-empty strata."""
    counts = np.asarray(counts, dtype=float)
    counts = counts[counts > 0]
    return counts / counts.sum() if len(counts) else counts


def effective_strata(shares: np.ndarray) -> float:
    """E = exp(entropy) of the stratum shares (natural log)."""
    p = shares[shares > 0]
    return float(np.exp(-(p * np.log(p)).sum())) if len(p) else 0.0


def tail_share(shares: np.ndarray, coverage_mass: float) -> tuple[float, int]:
    """(p_tail, strata covered): cover strata by decreasing share until the mass >= coverage_mass."""
    if len(shares) == 0:
        return 0.0, 0
    p = np.sort(shares)[::-1]
    cum = np.cumsum(p)
    k = int(np.searchsorted(cum, coverage_mass - EPS, side="left"))
    k = min(k, len(p) - 1)
    return float(p[k]), k + 1


def budget_rule(counts: np.ndarray, profile: Profile, ratio_scale: float = 1.0) -> dict:
    """n = min(max(MIN_COUNT, ceil(N*MIN_RATIO), ceil(E*STRATA_MULT), ceil(TAIL_TARGET/p_tail)),
    MAX_COUNT, floor(N*MAX_RATIO), N), with every term kept for the report.

    `ratio_scale` multiplies MIN_RATIO and MAX_RATIO (capped at 1; the demo's small-pool option).
    """
    counts = np.asarray(counts)
    n_pool = int(counts.sum())
    shares = stratum_shares(counts)
    e = effective_strata(shares)
    p_tail, covered = tail_share(shares, profile.coverage_mass)
    min_ratio = min(1.0, profile.min_ratio * ratio_scale)
    max_ratio = min(1.0, profile.max_ratio * ratio_scale)
    lower = {
        "min_count": profile.min_count,
        "n_min_ratio": ceil_tol(n_pool * min_ratio),
        "e_strata_mult": ceil_tol(e * profile.strata_mult),
        "tail": ceil_tol(profile.tail_target / p_tail) if p_tail > 0 else 0,
    }
    upper = {"max_count": profile.max_count, "n_max_ratio": floor_tol(n_pool * max_ratio), "pool": n_pool}
    lo = max(lower.values())
    n = min(lo, *upper.values())
    return {
        "rule": "budget_rule", "pool_size": n_pool, "strata": int(len(shares)), "effective_strata": e,
        "coverage_mass": profile.coverage_mass, "strata_covered": covered, "p_tail": p_tail,
        "min_ratio_used": min_ratio, "max_ratio_used": max_ratio, "ratio_scale": ratio_scale,
        "lower_terms": lower, "lower": lo, "upper_terms": upper,
        "binding": min(upper, key=upper.get) if n < lo else max(lower, key=lower.get), "n": int(n),
    }


def vds_adjustment(n: int, n_pool: int, positive_share: float, profile: Profile, ratio_scale: float = 1.0) -> dict:
    """target = min(max(n, ceil(TARGET_POSITIVE/pos)), min(N, MAX_COUNT, ceil(n*MAX_MULT), floor(N*MAX_RATIO))).

    With no positive candidate (pos = 0) the adjustment cannot help and is skipped (target = n, noted).
    """
    max_ratio = min(1.0, profile.max_ratio * ratio_scale)
    cap_terms = {"pool": n_pool, "max_count": profile.max_count, "n_max_mult": ceil_tol(n * profile.vds3_max_mult),
                 "n_max_ratio": floor_tol(n_pool * max_ratio)}
    out = {"positive_share": positive_share, "threshold": profile.vds3_threshold,
           "target_positive": profile.vds3_target_positive, "cap_terms": cap_terms}
    if positive_share <= 0:
        out.update(needed=None, target=int(n), applied=False, note="no candidate has legacy_vds3 > threshold")
        return out
    needed = ceil_tol(profile.vds3_target_positive / positive_share)
    target = min(max(n, needed), min(cap_terms.values()))
    out.update(needed=needed, target=int(target), applied=True)
    return out


def derive_budget(counts: np.ndarray, legacy_vds3: np.ndarray, profile: Profile, *,
                  override: int | float | None = None, ratio_scale: float = 1.0, vds_aware: bool = True) -> dict:
    """The profile's target size with its full derivation (override, budget rule, VDS-aware adjustment)."""
    n_pool = int(np.asarray(counts).sum())
    if override is not None:
        if isinstance(override, int):
            target, how = min(int(override), n_pool), f"fixed count {override}"
        else:
            target, how = min(n_pool, max(1, floor_tol(n_pool * float(override)))), f"fixed ratio {override}"
        out = {"mode": "override", "override": override, "description": how, "pool_size": n_pool,
               "n": target, "vds_adjustment": None, "target": target}
    else:
        rule = budget_rule(counts, profile, ratio_scale)
        out = {"mode": "rule", **rule, "vds_adjustment": None, "target": rule["n"]}
        if vds_aware:
            lv3 = np.asarray(legacy_vds3, dtype=float)
            pos = float((lv3 > profile.vds3_threshold).mean()) if len(lv3) else 0.0
            adj = vds_adjustment(rule["n"], n_pool, pos, profile, ratio_scale)
            out["vds_adjustment"] = adj
            out["target"] = adj["target"]
        else:
            out["vds_adjustment"] = {"applied": False, "note": "disabled (no_vds_budget)"}
    if out["target"] <= 0:
        log.warning("budget of profile %s is 0 (pool of %d): the subset will be empty", profile.name, n_pool)
    return out
