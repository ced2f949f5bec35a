"""The uniform baseline "Uni-10x" (GDO_METHOD.md section 5).

The paper trains one fixed 512k uniform subset for every profile (`uniform.size`); the release draws
`uniform.multiplier` (10) times each profile's own target. The draw walks the seeded reservoir
(the same one the profiles' fallback stage uses: the release's reservoir and shuffle under
`tie_numbers: python_random`, a PCG64 permutation of the pool under `pcg64`) with the same dedup and
per-video cap as the profiles; only when the reservoir runs short is dedup relaxed (a second walk), and
that is reported.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import Params, params_hash
from ..io import manifest_matches, read_json, write_json, write_manifest, write_text
from .context import PoolContext
from .files import REQUIRED, RowSource, rows_of_ids, write_subset_files
from .report import composition, js_by_field
from .select import Picker

log = logging.getLogger(__name__)


def uniform_size(ctx: PoolContext, profile_target: int | None) -> tuple[int, dict]:
    """Requested uniform size (capped at the pool) and how it was derived."""
    u = ctx.params.subsets.uniform
    if u.size is not None:
        requested, how = int(u.size), f"fixed size {u.size}"
    else:
        if profile_target is None:
            raise ValueError("uniform.multiplier needs the profile's target")
        product = profile_target * u.multiplier
        exact = ctx.params.subsets.option("rounding") != "float"
        requested = int(math.ceil(product - 1e-9 if exact else product))
        how = f"{u.multiplier} x target {profile_target}"
    size = min(requested, ctx.n)
    return size, {"requested": requested, "size": size, "derivation": how, "capped_at_pool": requested > ctx.n}


def draw_uniform(ctx: PoolContext, size: int, requested: int | None = None) -> tuple[np.ndarray, dict]:
    """Rows of the uniform baseline (reservoir order) and the draw report (dedup relaxation, shortfall).

    tie_numbers "pcg64" (kit): walk a seeded permutation of the whole pool. "python_random" (release):
    walk the release's reservoir (1.35 x the requested size, Algorithm R over the file order) in its
    shuffled order, from the same random.Random(seed) stream as the profile's ties.
    """
    if ctx.params.subsets.option("tie_numbers") == "python_random":
        order = ctx.release_stream(size if requested is None else requested).shuffled
    else:
        order = ctx.reservoir()
    picker = Picker(ctx.text_code, ctx.cap_video_code(), ctx.is_video, ctx.params.subsets.per_video_cap,
                    max_video=ctx.n, target=size)
    first = picker.take(order, "uniform")
    relaxed = 0
    if picker.total < size:
        picker.dedup = False
        relaxed = picker.take(order, "uniform_dedup_relaxed")
        log.warning("uniform baseline: the pool ran short under dedup; %d duplicate-text rows added (dedup relaxed)",
                    relaxed)
    rows = picker.selected()
    unmet = []
    if len(rows) < size:
        unmet.append({"constraint": "size", "required": size, "achieved": int(len(rows)),
                      "detail": "pool exhausted under the per-video cap"})
        log.warning("uniform baseline: %d of %d drawn (per-video cap)", len(rows), size)
    return rows, {"drawn_with_dedup": first, "dedup_relaxed": relaxed, "size": int(len(rows)),
                  "unmet_constraints": unmet}


def uniform_hash(params: Params, size: int, hashes: dict, requested: int | None = None) -> str:
    """Params hash of a uniform baseline: its settings, size, seed, cap, strata options, upstream hashes."""
    s = params.subsets
    return params_hash({"uniform": s.uniform.model_dump(mode="json"), "size": size, "seed": params.seed,
                        "per_video_cap": s.per_video_cap, "prompt_text": s.prompt_text,
                        "behaviour": s.behaviour_options(), "requested": requested,
                        "strata": [s.temporal_category, s.mcq_detection, s.duration_frames], "inputs": hashes})


@dataclass
class UniformPlan:
    """A uniform baseline to reuse (report set) or to write (report None until written)."""

    name: str
    out: Path
    hash: str
    rows: np.ndarray
    info: dict
    draw: dict | None = None
    report: dict | None = None


def plan_uniform(params: Params, ctx: PoolContext, profile_name: str, target: int, force: bool = False) -> UniformPlan:
    """Reuse the uniform baseline of this size when current (in this run or on disk), else draw it."""
    size, info = uniform_size(ctx, target)
    name = params.subsets.uniform_name(profile_name)
    out = params.stage_dir("subsets", name)
    h = uniform_hash(params, size, ctx.hashes, info["requested"])
    cached = ctx.uniform_cache.get(name)
    if cached is not None and cached.hash == h:  # built or read earlier in this run
        return cached
    if not force and manifest_matches(out, h, REQUIRED):
        ids = (out / "selected_ids.txt").read_text(encoding="utf-8").split()
        plan = UniformPlan(name, out, h, rows_of_ids(ctx, ids), info, report=read_json(out / "report.json"))
        ctx.uniform_cache[name] = plan
        log.info("uniform baseline %s: up to date, skipped", name)
        return plan
    rows, draw = draw_uniform(ctx, size, info["requested"])
    return UniformPlan(name, out, h, rows, info, draw=draw)


def write_uniform(params: Params, ctx: PoolContext, plan: UniformPlan, source: RowSource) -> dict:
    """Write a drawn uniform baseline's files, report, card and manifest."""
    t0 = time.time()
    files = write_subset_files(ctx, plan.out, plan.rows, None, ctx.scores(), source)
    report = {"name": plan.name, "kind": "uniform", "seed": params.seed, "pool_size": ctx.n, **plan.info,
              **(plan.draw or {}), "composition": composition(ctx, plan.rows),
              "pool_composition": composition(ctx, None), "js_divergence": js_by_field(ctx, plan.rows), "files": files}
    write_json(plan.out / "report.json", report)
    write_text(plan.out / "card.md", _uniform_card(plan.name, report))
    write_manifest(plan.out, stage=f"subsets:{plan.name}", params_hash=plan.hash, params_file=params.source_file,
                   wall_time_s=time.time() - t0, outputs=[plan.out / f for f in REQUIRED])
    plan.report = report
    ctx.uniform_cache[plan.name] = plan
    log.info("uniform baseline %s: %d rows (%s)", plan.name, len(plan.rows), plan.info["derivation"])
    return report


def _uniform_card(name: str, r: dict) -> str:
    """card.md of a uniform baseline."""
    lines = [f"# Data card: {name}", "", "Uniform baseline (Uni-10x) drawn from the seeded reservoir with the "
             "profiles' dedup and per-video cap.", "",
             f"- size: **{r['size']}** (requested {r['requested']}: {r['derivation']}; capped at the pool: "
             f"{r['capped_at_pool']})", f"- dedup relaxed for {r['dedup_relaxed']} rows",
             f"- video share {100 * r['composition']['video_share']:.1f}% (pool "
             f"{100 * r['pool_composition']['video_share']:.1f}%)",
             f"- train.jsonl sha256 `{r['files']['train.jsonl']}`"]
    for u in r["unmet_constraints"]:
        lines.append(f"- unmet: {u['constraint']} required {u['required']}, achieved {u['achieved']}")
    return "\n".join(lines) + "\n"
