"""One goal-preset selection from a loaded pool: budget, quotas, constraints, the six fill stages.

`select_subset` is pure (no files): it returns the selected rows in selection order, the stage of each
and a report of the budget derivation, quotas, stage counts and every unmet constraint. Infeasible
constraints (e.g. a video floor above what the pool holds) are reported and warned about, never raised.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

from ..score import check_ablations
from .budget import derive_budget
from .context import PoolContext
from .profiles import Profile
from ..apportion import largest_remainder
from .quotas import bucket_quotas, source_group_floors, stratum_caps, video_limits
from .select import STAGES, Picker, score_order, top_per_group
from .strata import VIDEO_BUCKET

log = logging.getLogger(__name__)
TEMPORAL_FLOOR_CATEGORIES = ("Temporal", "Mixed")


@dataclass
class Selection:
    """Selected pool rows (selection order), their stages, and the selection report."""

    rows: np.ndarray
    stages: list[str]
    report: dict
    scores: pd.DataFrame = field(repr=False)


def _unmet(name: str, required: int, achieved: int, detail: str = "") -> dict:
    return {"constraint": name, "required": int(required), "achieved": int(achieved), "detail": detail}


def select_subset(ctx: PoolContext, profile: Profile, ablations: Iterable[str] = (), *,
                  target: int | float | None = None) -> Selection:
    """Select one subset. `target` (count or ratio) replaces the budget rule (budget sweeps, overrides)."""
    abl = check_ablations(ablations)
    s = ctx.params.subsets
    strata = ctx.strata
    scores = ctx.scores(abl)
    override = target if target is not None else s.budget_override
    budget = derive_budget(strata.counts, scores["legacy_vds3"].to_numpy(), profile, override=override,
                           ratio_scale=s.ratio_scale, vds_aware="no_vds_budget" not in abl)
    size = int(budget["target"])

    b_quota = bucket_quotas(ctx.table["bucket"], size)
    limits = video_limits(profile, size, b_quota.get(VIDEO_BUCKET, 0))
    s_quota = largest_remainder(strata.counts, size)
    group_counts = strata.fields["source_group"].value_counts()
    floors = source_group_floors(group_counts[group_counts > 0], size, profile)

    temporal = strata.fields["temporal"]
    temporal_video = ctx.is_video & temporal.isin(["Temporal"]).to_numpy()
    temporal_floor_rows = ctx.is_video & temporal.isin(list(TEMPORAL_FLOOR_CATEGORIES)).to_numpy()
    n_strata = strata.n_strata
    is_video_stratum = np.bincount(strata.stratum, weights=ctx.is_video, minlength=n_strata) > 0
    is_temporal_stratum = np.bincount(strata.stratum, weights=temporal_video, minlength=n_strata) > 0
    caps = stratum_caps(s_quota, is_video_stratum, is_temporal_stratum, profile)

    score = scores["score"].to_numpy()
    order = score_order(score, scores["tie"].to_numpy())
    cand = top_per_group(order, strata.stratum, caps)

    picker = Picker(ctx.text_code, ctx.video_code, ctx.is_video, s.per_video_cap, limits["max_video"], size)
    counts: dict[str, int] = {}
    # 1. temporal video floor (Temporal and Mixed videos count)
    counts["temporal_video_floor"] = picker.take(order[temporal_floor_rows[order]], "temporal_video_floor",
                                                 limit=limits["min_temporal_video"])
    # 2. video floor
    counts["video_floor"] = picker.take(order[ctx.is_video[order]], "video_floor",
                                        limit=limits["min_video"] - picker.n_video)
    # 3. source-group floors
    cats = list(strata.fields["source_group"].cat.categories)
    code_of = {g: i for i, g in enumerate(cats)}
    need_g = [0] * len(cats)
    taken_g = np.bincount(ctx.group_code[picker.selected()], minlength=len(cats)) if picker.total else np.zeros(len(cats), int)
    for g, req in floors["floors"].items():
        need_g[code_of[g]] = int(req - taken_g[code_of[g]])
    floored = np.zeros(len(cats), dtype=bool)
    floored[[code_of[g] for g in floors["floors"]]] = True
    counts["source_group_floors"] = picker.take(order[floored[ctx.group_code[order]]], "source_group_floors",
                                                key=ctx.group_code, need=need_g)
    # 4. stratum quotas
    taken_s = np.bincount(strata.stratum[picker.selected()], minlength=n_strata) if picker.total else np.zeros(n_strata, int)
    need_s = (s_quota - taken_s).tolist()
    counts["stratum_quotas"] = picker.take(cand, "stratum_quotas", key=strata.stratum, need=need_s)
    # 5. global fill by score (within the oversampled candidates)
    counts["global_fill"] = picker.take(cand, "global_fill")
    # 6. fallback from the uniform reservoir
    counts["uniform_fallback"] = picker.take(ctx.reservoir(), "uniform_fallback")

    rows = picker.selected()
    report = _selection_report(ctx, profile, abl, budget, b_quota, limits, s_quota, floors, caps, cand, rows,
                               picker, counts, temporal_floor_rows)
    return Selection(rows=rows, stages=list(picker.stage_of), report=report, scores=scores)


def _selection_report(ctx: PoolContext, profile: Profile, abl: frozenset, budget: dict, b_quota: dict,
                      limits: dict, s_quota: np.ndarray, floors: dict, caps: np.ndarray, cand: np.ndarray,
                      rows: np.ndarray, picker: Picker, counts: dict, temporal_floor_rows: np.ndarray) -> dict:
    """Budget, quotas, stage counts and unmet constraints of one selection (warnings for unmet ones)."""
    size = int(budget["target"])
    strata = ctx.strata
    n_video = int(ctx.is_video[rows].sum())
    n_tv = int(temporal_floor_rows[rows].sum())
    taken_s = np.bincount(strata.stratum[rows], minlength=strata.n_strata)
    unmet = []
    if len(rows) < size:
        unmet.append(_unmet("size", size, len(rows), "pool exhausted under dedup / per-video cap / max_video"))
    if n_tv < limits["min_temporal_video"]:
        unmet.append(_unmet("min_temporal_video", limits["min_temporal_video"], n_tv,
                            f"eligible Temporal/Mixed video candidates: {_eligible(ctx, temporal_floor_rows)}"))
    if n_video < limits["min_video"]:
        unmet.append(_unmet("min_video", limits["min_video"], n_video,
                            f"eligible video candidates: {_eligible(ctx, ctx.is_video)}"))
    if n_video > limits["max_video"]:
        unmet.append(_unmet("max_video", limits["max_video"], n_video, "exceeded"))
    cats = list(strata.fields["source_group"].cat.categories)
    taken_g = np.bincount(ctx.group_code[rows], minlength=len(cats))
    group_status = {}
    for g, req in floors["floors"].items():
        got = int(taken_g[cats.index(g)])
        group_status[g] = {"floor": int(req), "taken": got}
        if got < req:
            unmet.append(_unmet(f"source_group_floor:{g}", req, got))
    short_strata = int((taken_s < s_quota).sum())
    for u in unmet:
        log.warning("subset %s%s: unmet constraint %s (required %d, achieved %d) %s", profile.name,
                    "".join(f"_{a}" for a in sorted(abl)), u["constraint"], u["required"], u["achieved"], u["detail"])
    return {
        "profile": profile.name, "ablations": sorted(abl), "pool_size": ctx.n, "target": size, "size": int(len(rows)),
        "budget": budget,
        "quotas": {
            "bucket": b_quota, **limits,
            "strata": {"n_strata": strata.n_strata, "with_quota": int((s_quota > 0).sum()),
                       "quota_sum": int(s_quota.sum()), "under_quota": short_strata},
            "source_group_floors": floors, "candidates_after_caps": int(len(cand)),
            "caps_sum": int(caps.sum()),
        },
        "stage_counts": {st: int(counts.get(st, 0)) for st in STAGES},
        "achieved": {"video": n_video, "temporal_video": n_tv, "source_groups": group_status,
                     "per_video_cap": ctx.params.subsets.per_video_cap},
        "unmet_constraints": unmet,
    }


def _eligible(ctx: PoolContext, mask: np.ndarray) -> int:
    """How many rows of `mask` a subset could hold at most (distinct texts, per-video cap)."""
    rows = np.flatnonzero(mask)
    if not len(rows):
        return 0
    _, first = np.unique(ctx.text_code[rows], return_index=True)
    kept = rows[np.sort(first)]
    per_video = np.bincount(ctx.video_code[kept])
    return int(np.minimum(per_video, ctx.params.subsets.per_video_cap).sum())
