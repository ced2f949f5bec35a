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
from .quotas import apportion_in_order, bucket_quotas, source_group_floors, stratum_caps, video_limits
from .release import stream_candidates
from .select import STAGES, Picker, score_order, top_per_group
from .strata import VIDEO_BUCKET
from .uniform import uniform_size

log = logging.getLogger(__name__)
TEMPORAL_FLOOR_CATEGORIES = ("Temporal", "Mixed")


@dataclass
class Selection:
    """Selected pool rows (selection order), their stages, and the selection report."""

    rows: np.ndarray
    stages: list[str]
    report: dict
    scores: pd.DataFrame = field(repr=False)
    candidates: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)


def _unmet(name: str, required: int, achieved: int, detail: str = "") -> dict:
    return {"constraint": name, "required": int(required), "achieved": int(achieved), "detail": detail}


def profile_budget(ctx: PoolContext, profile: Profile, ablations: frozenset[str] = frozenset(),
                   target: int | float | None = None) -> dict:
    """The profile's budget derivation on this pool (`target` or subsets.budget_override replace the rule)."""
    s = ctx.params.subsets
    rnd = s.option("rounding")
    strata = ctx.strata
    override = target if target is not None else s.budget_override
    counts = strata.counts[strata.first_seen()] if rnd == "float" else strata.counts
    return derive_budget(counts, ctx.positive_source(), profile, override=override, ratio_scale=s.ratio_scale,
                         vds_aware="no_vds_budget" not in ablations, rounding=rnd)


def select_subset(ctx: PoolContext, profile: Profile, ablations: Iterable[str] = (), *,
                  target: int | float | None = None) -> Selection:
    """Select one subset. `target` (count or ratio) replaces the budget rule (budget sweeps, overrides).

    The behaviour options (`subsets.behaviour` and the single options, gdo_utils.config.BEHAVIOUR_OPTIONS)
    pick between the release's and the kit's ways at each step; the report lists the effective values.
    """
    abl = check_ablations(ablations)
    s = ctx.params.subsets
    opt = s.behaviour_options()
    rnd = opt["rounding"]
    first_seen = opt["tie_order"] == "first_seen"
    strata = ctx.strata
    scores = ctx.scores(abl)
    budget = profile_budget(ctx, profile, abl, target)
    size = int(budget["target"])

    stream = None
    if opt["tie_numbers"] == "python_random":
        stream = ctx.release_stream(uniform_size(ctx, size)[1]["requested"])
        scores = scores.assign(tie=stream.ties)
    b_quota = bucket_quotas(ctx.table["bucket"], size, rnd, opt["tie_order"])
    limits = video_limits(profile, size, b_quota.get(VIDEO_BUCKET, 0), rnd)
    stratum_visit = strata.first_seen() if first_seen else np.arange(strata.n_strata)
    s_quota = apportion_in_order(strata.counts, size, rnd, stratum_visit)
    groups = strata.fields["source_group"]
    group_counts = groups.value_counts()
    floors = source_group_floors(group_counts[group_counts > 0], size, profile, rnd,
                                 [str(g) for g in pd.unique(groups.astype(str))] if first_seen else None)

    temporal = strata.fields["temporal"]
    temporal_video = ctx.is_video & temporal.isin(["Temporal"]).to_numpy()
    temporal_floor_rows = ctx.is_video & temporal.isin(list(TEMPORAL_FLOOR_CATEGORIES)).to_numpy()
    oversampled = temporal_floor_rows if opt["temporal_oversample_on"] == "temporal_mixed" else temporal_video
    n_strata = strata.n_strata
    is_video_stratum = np.bincount(strata.stratum, weights=ctx.is_video, minlength=n_strata) > 0
    is_temporal_stratum = np.bincount(strata.stratum, weights=oversampled, minlength=n_strata) > 0
    caps = stratum_caps(s_quota, is_video_stratum, is_temporal_stratum, profile, rnd)

    score = scores["score"].to_numpy()
    tie = scores["tie"].to_numpy()
    order = score_order(score, tie)
    if opt["candidate_ties"] == "stream":
        cand = stream_candidates(order, strata.stratum, caps, score, tie)
    else:
        cand = top_per_group(order, strata.stratum, caps)
    floor_pool = cand if opt["floor_candidates"] == "capped" else order

    picker = Picker(ctx.text_code, ctx.cap_video_code(), ctx.is_video, s.per_video_cap, limits["max_video"], size)
    counts: dict[str, int] = {}
    # 1. temporal video floor (Temporal and Mixed videos count)
    counts["temporal_video_floor"] = picker.take(floor_pool[temporal_floor_rows[floor_pool]], "temporal_video_floor",
                                                 limit=limits["min_temporal_video"])
    # 2. video floor
    counts["video_floor"] = picker.take(floor_pool[ctx.is_video[floor_pool]], "video_floor",
                                        limit=limits["min_video"] - picker.n_video)
    # 3. source-group floors
    counts["source_group_floors"] = _group_floors(ctx, picker, floors["floors"], floor_pool, opt["group_floor_fill"])
    # 4. stratum quotas
    taken_s = np.bincount(strata.stratum[picker.selected()], minlength=n_strata) if picker.total else np.zeros(n_strata, int)
    need_s = (s_quota - taken_s).tolist()
    if opt["quota_fill"] == "stratum_order":
        counts["stratum_quotas"] = _quotas_by_stratum(picker, cand, strata.stratum, need_s, s_quota, stratum_visit)
    else:
        counts["stratum_quotas"] = picker.take(cand, "stratum_quotas", key=strata.stratum, need=need_s)
    # 5. global fill by score (within the oversampled candidates)
    counts["global_fill"] = picker.take(cand, "global_fill")
    # 6. fallback from the uniform reservoir
    counts["uniform_fallback"] = picker.take(stream.reservoir if stream is not None else ctx.reservoir(),
                                             "uniform_fallback")

    rows = picker.selected()
    report = _selection_report(ctx, profile, abl, budget, b_quota, limits, s_quota, floors, caps, cand, rows,
                               picker, counts, temporal_floor_rows)
    report["behaviour"] = {"switch": s.behaviour, **opt}
    return Selection(rows=rows, stages=list(picker.stage_of), report=report, scores=scores, candidates=cand)


def _group_floors(ctx: PoolContext, picker: Picker, floors: dict[str, int], pool: np.ndarray, how: str) -> int:
    """Source-group floors: one score-ordered walk over every floored group (kit), or group by group in
    the floors' (most-common) order, each from its own rows in score order (release)."""
    cats = list(ctx.strata.fields["source_group"].cat.categories)
    code_of = {g: i for i, g in enumerate(cats)}
    if how == "group_by_group":
        got = 0
        codes = ctx.group_code[pool]
        for g, req in floors.items():
            c = code_of[g]
            missing = int(req) - (int((ctx.group_code[picker.selected()] == c).sum()) if picker.total else 0)
            if missing > 0:
                got += picker.take(pool[codes == c], "source_group_floors", limit=missing)
        return got
    taken_g = np.bincount(ctx.group_code[picker.selected()], minlength=len(cats)) if picker.total else np.zeros(len(cats), int)
    need_g = [0] * len(cats)
    for g, req in floors.items():
        need_g[code_of[g]] = int(req - taken_g[code_of[g]])
    floored = np.zeros(len(cats), dtype=bool)
    floored[[code_of[g] for g in floors]] = True
    return picker.take(pool[floored[ctx.group_code[pool]]], "source_group_floors", key=ctx.group_code, need=need_g)


def _quotas_by_stratum(picker: Picker, cand: np.ndarray, stratum: np.ndarray, need: list[int], quota: np.ndarray,
                       visit: np.ndarray) -> int:
    """Stratum quotas filled stratum by stratum in `visit` order (the release: first seen), each from its
    own candidates in score order, stopping at the target."""
    g = stratum[cand]
    by = np.argsort(g, kind="stable")
    sorted_g = g[by]
    lo = np.searchsorted(sorted_g, np.arange(len(quota)), side="left")
    hi = np.searchsorted(sorted_g, np.arange(len(quota)), side="right")
    got = 0
    for k in np.asarray(visit).tolist():
        if picker.total >= picker.target:
            break
        if quota[k] <= 0 or need[k] <= 0:
            continue
        got += picker.take(cand[by[lo[k]:hi[k]]], "stratum_quotas", limit=need[k])
    return got


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
