"""The subsets stage: build each goal-preset subset and its uniform baseline, write files, skip when current.

Per subset, under outputs/<run>/subsets/<name>/: train.jsonl (see `export`), selected_ids.txt (sorted
qa_uids), selection.parquet (qa_uid, fill stage, score, pick order), report.json, card.md and
manifest.json. The uniform baseline goes to subsets/uniform_<profile>/ (`uniform.multiplier`) or to one
shared subsets/uniform/ (`uniform.size`). Ablation subsets are named `<profile>_<ablation>...`
(e.g. temp_plus_no_vds) and are compared with their parent profile's uniform baseline.

A subset is skipped when its manifest's params hash matches: the hash covers the subsets settings,
the seed, the profile's values, the ablations and the pool / descriptor stages' own hashes.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..cache import log_recompute
from ..config import Params, params_hash
from ..io import manifest_matches, read_json, write_json, write_manifest, write_text
from ..score import ABLATIONS, check_ablations
from .context import PoolContext, input_hashes, load_context
from .core import Selection, profile_budget, select_subset
from .files import REQUIRED, RowSource, rows_of_ids, write_subset_files
from .profiles import Profile, load_profile
from .report import composition, data_card, js_by_field, overlap
from .uniform import plan_uniform, write_uniform

log = logging.getLogger(__name__)
HASH_EXCLUDED = ("profiles", "ablations")


def parse_subset_name(name: str) -> tuple[str, tuple[str, ...]]:
    """'temp_plus_no_vds_no_ppl' -> ('temp_plus', ('no_ppl', 'no_vds')); plain names have no ablations."""
    found: list[str] = []
    rest = name
    changed = True
    while changed:
        changed = False
        for a in sorted(ABLATIONS, key=len, reverse=True):
            if rest.endswith("_" + a):
                found.append(a)
                rest = rest[: -len(a) - 1]
                changed = True
                break
    return rest, tuple(sorted(found))


def subset_names(params: Params) -> list[str]:
    """The profiles of the params, then temp_plus_<ablation>[_<ablation>...] for each listed ablation ('+' joins)."""
    names = list(params.subsets.profiles)
    for a in params.subsets.ablations:
        name = "temp_plus_" + "_".join(a.split("+"))
        if name not in names:
            names.append(name)
    return names


def _settings(params: Params) -> dict:
    """The subsets settings that shape a subset (the lists of names to build are left out)."""
    data = params.subsets.model_dump(mode="json")
    return {k: v for k, v in data.items() if k not in HASH_EXCLUDED}


def subset_hash(params: Params, profile: Profile, ablations: Iterable[str], hashes: dict) -> str:
    """Params hash of one subset: settings, seed, profile values, ablations, upstream stage hashes."""
    return params_hash({"subsets": _settings(params), "seed": params.seed, "profile": profile.model_dump(mode="json"),
                        "ablations": sorted(ablations), "inputs": hashes})


class _Timer:
    """Wall and CPU time (this process) per named phase (kept in the manifest, not in the deterministic report)."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def run(self, name: str, fn, *args, **kwargs):
        """Call fn(*args, **kwargs) and add its wall and CPU time to `name`."""
        t, c = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            self.times[name] = round(self.times.get(name, 0.0) + time.perf_counter() - t, 4)
            self.cpu[name] = round(self.cpu.get(name, 0.0) + time.process_time() - c, 4)


class _LazyContext:
    """Loads the pool context on first use (so a run where everything is current reads nothing)."""

    def __init__(self, params: Params, ctx: PoolContext | None = None) -> None:
        self.params, self._ctx = params, ctx
        self._hashes: dict | None = None

    def get(self) -> PoolContext:
        """The pool context, loaded on first call (with the input hashes already computed, if any)."""
        if self._ctx is None:
            self._ctx = load_context(self.params, self._hashes)
        return self._ctx

    @property
    def loaded(self) -> bool:
        """Whether the pool was loaded, i.e. some subset was (re)built in this run."""
        return self._ctx is not None

    def hashes(self) -> dict:
        """Upstream stage hashes (from the loaded context, else read from the manifests)."""
        if self._ctx is not None:
            return self._ctx.hashes
        if self._hashes is None:       # code_version parses the builder's modules: once per run
            self._hashes = input_hashes(self.params)
        return self._hashes


def composition_figure_stem(params: Params) -> Path:
    """Where build_all saves the composition figure of every subset (PNG + PDF)."""
    return params.stage_dir("figures", "subsets_composition")


def _figure(params: Params, comps: dict) -> list[str]:
    """One composition figure for all subsets of the run (drawing is slow, so once per build_all)."""
    if not params.subsets.figures or not comps:
        return []
    import matplotlib.pyplot as plt  # lazy: matplotlib costs ~1 s to import

    from ..plots import save_figure
    from .plots import plot_composition

    fig = plot_composition(comps, title="subsets: composition vs pool")
    paths = save_figure(fig, composition_figure_stem(params), dpi=110)
    plt.close(fig)
    return [str(p) for p in paths]


# ----------------------------------------------------------------------------- profiles
def _base_target(ctx: PoolContext, profile: Profile) -> int:
    """The profile's own (no-ablation) target, which sizes its uniform baseline."""
    return int(profile_budget(ctx, profile)["target"])


def build_profile(params: Params, name: str, force: bool = False, *, ctx: PoolContext | None = None) -> dict:
    """Build one subset (a profile, or `<profile>_<ablation>`) and its uniform baseline; returns the report."""
    return _build_profile(params, name, force, _LazyContext(params, ctx))


def _build_profile(params: Params, name: str, force: bool, lazy: _LazyContext) -> dict:
    """build_profile with a shared (lazily loaded) pool context."""
    base, abl = parse_subset_name(name)
    check_ablations(abl)
    profile = load_profile(params, base)
    out = params.stage_dir("subsets", name)
    h = subset_hash(params, profile, abl, lazy.hashes())
    if not force and manifest_matches(out, h, REQUIRED):
        log.info("subset %s: up to date (%s), skipped", name, out)
        return read_json(out / "report.json")
    log_recompute(f"subset {name}", out, h)
    t0 = time.time()
    timer = _Timer()
    ctx = timer.run("load_context", lazy.get)
    sel: Selection = timer.run("select", select_subset, ctx, profile, abl)
    rows = sel.rows
    target = sel.report["target"] if not abl else _base_target(ctx, profile)
    plan = timer.run("uniform_draw", plan_uniform, params, ctx, base, target, force)
    source = timer.run("read_media", RowSource, ctx, np.concatenate([rows, plan.rows]) if plan.report is None else rows)
    if plan.report is None:
        timer.run("uniform_write", write_uniform, params, ctx, plan, source)
    uname, urows, ureport = plan.name, plan.rows, plan.report
    files = timer.run("subset_write", write_subset_files, ctx, out, rows, sel.stages, sel.scores, source)
    comp, pool_comp = composition(ctx, rows), composition(ctx, None)
    s = params.subsets
    report = {
        "name": name, "kind": "profile", "seed": params.seed, **sel.report,
        "composition": comp, "pool_composition": pool_comp, "uniform_composition": ureport["composition"],
        "js_divergence": js_by_field(ctx, rows),
        "uniform": {"name": uname, "size": int(len(urows)), "overlap": overlap(rows, urows)},
        "options": {"temporal_category": s.temporal_category, "mcq_detection": s.mcq_detection,
                    "duration_frames": s.duration_frames, "prompt_text": s.prompt_text,
                    "per_video_cap": s.per_video_cap, "ratio_scale": s.ratio_scale,
                    "budget_override": s.budget_override},
        "profile_values": profile.model_dump(mode="json"), "strata_notes": ctx.strata.notes,
        "score_notes": sel.scores.attrs.get("notes", {}), "files": files,
    }
    figs = [str(composition_figure_stem(params).with_suffix(".png"))] if params.subsets.figures else []
    report["figures"] = figs
    write_json(out / "report.json", report)
    write_text(out / "card.md", data_card(name, report, figs))
    write_manifest(out, stage=f"subsets:{name}", params_hash=h, params_file=params.source_file,
                   wall_time_s=time.time() - t0, outputs=[out / f for f in REQUIRED],
                   extra={"profile": base, "ablations": list(abl), "timings_s": timer.times,
                          "cpu_s": timer.cpu})
    log.info("subset %s: %d of target %d (%d video), %d unmet constraint(s)", name, report["size"], report["target"],
             report["achieved"]["video"], len(report["unmet_constraints"]))
    return report


def composition_inputs(reports: dict[str, dict], profiles: Iterable[str]) -> dict[str, dict]:
    """Compositions to compare: the pool, each preset subset (no ablations) and the last preset's uniform."""
    base = [n for n in reports if n in set(profiles)]
    if not base:
        return {}
    comps = {"pool": reports[base[0]]["pool_composition"], **{n: reports[n]["composition"] for n in base}}
    last = reports[base[-1]]
    comps[last["uniform"]["name"]] = last["uniform_composition"]
    return comps


def build_all(params: Params, force: bool = False, *, ctx: PoolContext | None = None) -> dict[str, dict]:
    """Every profile of the params (with its uniform baseline) and the temp_plus ablation subsets."""
    lazy = _LazyContext(params, ctx)
    reports = {name: _build_profile(params, name, force, lazy) for name in subset_names(params)}
    summary = {n: {"size": r["size"], "target": r["target"], "video_share": r["composition"]["video_share"],
                   "temporal_share": r["composition"]["temporal_share"], "unmet": len(r["unmet_constraints"]),
                   "uniform": r["uniform"]["name"], "uniform_size": r["uniform"]["size"]} for n, r in reports.items()}
    write_json(params.stage_dir("subsets", "summary.json"), summary)
    comps = composition_inputs(reports, params.subsets.profiles)
    if lazy.loaded or not composition_figure_stem(params).with_suffix(".png").is_file():
        _figure(params, comps)   # redrawn only when a subset was (re)built or the figure is missing
    return reports


def subset_rows(params: Params, name: str, ctx: PoolContext) -> np.ndarray:
    """Pool rows of a built subset (from its selected_ids.txt), e.g. to plot its score distribution."""
    path = params.stage_dir("subsets", name, "selected_ids.txt")
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: build subset {name!r} first")
    return rows_of_ids(ctx, path.read_text(encoding="utf-8").split())


def budget_sweep(params: Params, name: str, budgets: Iterable[int | float], *, ctx: PoolContext | None = None) -> pd.DataFrame:
    """Select `name` at several fixed budgets (counts or ratios) without writing; one row per budget."""
    base, abl = parse_subset_name(name)
    profile = load_profile(params, base)
    ctx = ctx or load_context(params)
    rows = []
    for b in budgets:
        sel = select_subset(ctx, profile, abl, target=b)
        comp = composition(ctx, sel.rows)
        js = js_by_field(ctx, sel.rows)
        rows.append({"budget": b, "target": sel.report["target"], "size": sel.report["size"],
                     "video_share": comp["video_share"], "temporal_share": comp["temporal_share"],
                     "js_stratum": js["stratum"], "mean_score": float(sel.scores["score"].to_numpy()[sel.rows].mean())
                     if len(sel.rows) else float("nan"),
                     "unmet": len(sel.report["unmet_constraints"]), **sel.report["stage_counts"]})
    return pd.DataFrame(rows)


def ablation_table(params: Params, reports: dict[str, dict], ctx: PoolContext, reference: str = "temp_plus") -> pd.DataFrame:
    """Size, video share and overlap with the reference subset of each `reference*` ablation subset."""
    ref = set(subset_rows(params, reference, ctx).tolist())
    rows = {n: {"size": r["size"], "video_share": r["composition"]["video_share"],
                f"shared_with_{reference}": len(ref & set(subset_rows(params, n, ctx).tolist()))}
            for n, r in reports.items() if n.startswith(reference)}
    return pd.DataFrame(rows).T
