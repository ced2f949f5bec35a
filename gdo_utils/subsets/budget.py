"""The budget rule and the VDS-aware adjustment of a goal preset (GDO_METHOD.md section 5).

`rounding` (subsets.rounding) picks the arithmetic: "tolerance" (kit) rounds every ceil/floor of a product
of counts and ratios with a 1e-9 tolerance, so floating-point noise (0.07 * 100 = 7.000000000000001)
never adds or drops a sample; "float" (release) rounds the plain floating-point values in the release's
order of operations (floor(100000 * 0.018) = floor(1799.9999999999998) = 1799), sums the entropy and the
covered mass one stratum at a time in the order given, and compares the mass without tolerance.
"""
from __future__ import annotations

import logging
import math

import numpy as np

from .profiles import Profile
from .quotas import ceil_r, floor_r

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


def tail_share(shares: np.ndarray, coverage_mass: float, rounding: str = "tolerance") -> tuple[float, int]:
    """(p_tail, strata covered): cover strata by decreasing share until the mass >= coverage_mass."""
    if len(shares) == 0:
        return 0.0, 0
    if rounding == "float":
        cov, covered, p_tail = 0.0, 0, 0.0
        for p in sorted(shares.tolist(), reverse=True):
            cov += p
            covered += 1
            p_tail = p
            if cov >= coverage_mass:
                break
        return float(p_tail), covered
    p = np.sort(shares)[::-1]
    cum = np.cumsum(p)
    k = int(np.searchsorted(cum, coverage_mass - EPS, side="left"))
    k = min(k, len(p) - 1)
    return float(p[k]), k + 1


def _entropy_float(shares: np.ndarray) -> float:
    """exp(entropy) summed one stratum at a time (the release's order of floating-point additions)."""
    h = 0.0
    for p in shares.tolist():
        h -= p * math.log(max(p, 1e-12))
    return math.exp(h)


def budget_rule(counts: np.ndarray, profile: Profile, ratio_scale: float = 1.0, rounding: str = "tolerance") -> dict:
    """n = min(max(MIN_COUNT, ceil(N*MIN_RATIO), ceil(E*STRATA_MULT), ceil(TAIL_TARGET/p_tail)),
    MAX_COUNT, floor(N*MAX_RATIO), N), with every term kept for the report.

    `ratio_scale` multiplies MIN_RATIO and MAX_RATIO (capped at 1; the demo's small-pool option). With
    rounding "float" the counts are taken in the order given (the release: first seen).
    """
    counts = np.asarray(counts)
    n_pool = int(counts.sum())
    shares = stratum_shares(counts)
    e = _entropy_float(shares) if rounding == "float" else effective_strata(shares)
    p_tail, covered = tail_share(shares, profile.coverage_mass, rounding)
    min_ratio = min(1.0, profile.min_ratio * ratio_scale)
    max_ratio = min(1.0, profile.max_ratio * ratio_scale)
    if rounding == "float":
        tail = ceil_r(max(1.0, profile.tail_target) / max(p_tail, 1e-9), rounding)
        e_term = ceil_r(max(1.0, e * max(1.0, profile.strata_mult)), rounding)
    else:
        tail = ceil_r(profile.tail_target / p_tail, rounding) if p_tail > 0 else 0
        e_term = ceil_r(e * profile.strata_mult, rounding)
    lower = {"min_count": profile.min_count, "n_min_ratio": ceil_r(n_pool * min_ratio, rounding),
             "e_strata_mult": e_term, "tail": tail}
    n_max_ratio = floor_r(n_pool * max_ratio, rounding)
    if rounding == "float" and n_max_ratio <= 0:   # the release reads a zero ratio bound as "no bound"
        n_max_ratio = n_pool
    upper = {"max_count": profile.max_count, "n_max_ratio": n_max_ratio, "pool": n_pool}
    lo = max(lower.values())
    n = min(lo, *upper.values())
    if rounding == "float" and n_pool > 0:
        n = max(1, n)
    return {
        "rule": "budget_rule", "pool_size": n_pool, "strata": int(len(shares)), "effective_strata": e,
        "coverage_mass": profile.coverage_mass, "strata_covered": covered, "p_tail": p_tail,
        "min_ratio_used": min_ratio, "max_ratio_used": max_ratio, "ratio_scale": ratio_scale, "rounding": rounding,
        "lower_terms": lower, "lower": lo, "upper_terms": upper,
        "binding": min(upper, key=upper.get) if n < lo else max(lower, key=lower.get), "n": int(n),
    }


def vds_adjustment(n: int, n_pool: int, positive_share: float, profile: Profile, ratio_scale: float = 1.0,
                   rounding: str = "tolerance") -> dict:
    """target = min(max(n, ceil(TARGET_POSITIVE/pos)), min(N, MAX_COUNT, ceil(n*MAX_MULT), floor(N*MAX_RATIO))).

    With no positive candidate (pos = 0) the adjustment cannot help and is skipped (target = n, noted).
    """
    max_ratio = min(1.0, profile.max_ratio * ratio_scale)
    cap_terms = {"pool": n_pool, "max_count": profile.max_count, "n_max_mult": ceil_r(n * profile.vds3_max_mult, rounding),
                 "n_max_ratio": floor_r(n_pool * max_ratio, rounding)}
    if rounding == "float":   # the release's guards: a zero ratio bound means none; every cap at least 1
        if cap_terms["n_max_ratio"] <= 0:
            cap_terms["n_max_ratio"] = n_pool
        cap_terms.update({k: max(1, v) for k, v in cap_terms.items() if k != "pool"})
    out = {"positive_share": positive_share, "threshold": profile.vds3_threshold,
           "target_positive": profile.vds3_target_positive, "cap_terms": cap_terms}
    if positive_share <= 0:
        out.update(needed=None, target=int(n), applied=False, note="no candidate has legacy_vds3 > threshold")
        return out
    needed = ceil_r(max(1, profile.vds3_target_positive) / positive_share, rounding)
    target = min(max(n, needed), min(cap_terms.values()))
    if rounding == "float" and n_pool:
        target = max(1, min(target, n_pool))
    out.update(needed=needed, target=int(target), applied=True)
    return out


def derive_budget(counts: np.ndarray, legacy_vds3: np.ndarray, profile: Profile, *,
                  override: int | float | None = None, ratio_scale: float = 1.0, vds_aware: bool = True,
                  rounding: str = "tolerance") -> dict:
    """The profile's target size with its full derivation (override, budget rule, VDS-aware adjustment).

    `legacy_vds3` holds the rows the VDS-positive share is counted over (pool rows, or every descriptor
    row under the release option); an empty array means no descriptors, and the adjustment is skipped.
    """
    n_pool = int(np.asarray(counts).sum())
    if override is not None:
        if isinstance(override, int):
            target, how = min(int(override), n_pool), f"fixed count {override}"
        else:
            target, how = min(n_pool, max(1, floor_r(n_pool * float(override), rounding))), f"fixed ratio {override}"
        out = {"mode": "override", "override": override, "description": how, "pool_size": n_pool,
               "n": target, "vds_adjustment": None, "target": target}
    else:
        rule = budget_rule(counts, profile, ratio_scale, rounding)
        out = {"mode": "rule", **rule, "vds_adjustment": None, "target": rule["n"]}
        lv3 = np.asarray(legacy_vds3, dtype=float)
        if not vds_aware:
            out["vds_adjustment"] = {"applied": False, "note": "disabled (no_vds_budget)"}
        elif not len(lv3):
            out["vds_adjustment"] = {"applied": False, "note": "no descriptors"}
        else:
            pos = float((lv3 > profile.vds3_threshold).sum() / len(lv3))
            adj = vds_adjustment(rule["n"], n_pool, pos, profile, ratio_scale, rounding)
            out["vds_adjustment"] = adj
            out["target"] = adj["target"]
    if out["target"] <= 0:
        log.warning("budget of profile %s is 0 (pool of %d): the subset will be empty", profile.name, n_pool)
    return out
