"""Composition of a subset vs the pool, Jensen-Shannon divergences, and the data card (card.md)."""
from __future__ import annotations

import numpy as np

from .context import PoolContext
from .strata import STRATA_FIELDS


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) of two count or probability vectors."""
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / m[nz])).sum())

    return max(0.0, 0.5 * kl(p) + 0.5 * kl(q))


def field_counts(ctx: PoolContext, rows: np.ndarray | None, name: str) -> tuple[list[str], np.ndarray]:
    """(category labels, counts) of one stratum field over the pool (rows=None) or the given rows."""
    col = ctx.strata.fields[name]
    codes = col.cat.codes.to_numpy()
    if rows is not None:
        codes = codes[rows]
    return [str(c) for c in col.cat.categories], np.bincount(codes, minlength=len(col.cat.categories))


def composition(ctx: PoolContext, rows: np.ndarray | None) -> dict:
    """Size, video / temporal shares and the share of every value of every stratum field."""
    n = ctx.n if rows is None else len(rows)
    sel = slice(None) if rows is None else rows
    is_video = ctx.is_video[sel]
    temporal = ctx.strata.fields["temporal"].cat.codes.to_numpy()[sel]
    t_code = list(ctx.strata.fields["temporal"].cat.categories).index("Temporal")
    out = {"size": int(n), "video_share": float(is_video.mean()) if n else 0.0,
           "temporal_share": float((temporal == t_code).mean()) if n else 0.0,
           "temporal_in_video_share": float((temporal[is_video] == t_code).mean()) if is_video.any() else 0.0,
           "fields": {}}
    for name in STRATA_FIELDS:
        labels, counts = field_counts(ctx, rows, name)
        out["fields"][name] = {lab: float(c / n) if n else 0.0 for lab, c in zip(labels, counts) if c > 0}
    return out


def js_by_field(ctx: PoolContext, rows: np.ndarray) -> dict[str, float]:
    """JS divergence of every stratum field's distribution in the subset vs the pool (and of the strata)."""
    out = {}
    for name in STRATA_FIELDS:
        _, pool = field_counts(ctx, None, name)
        _, sub = field_counts(ctx, rows, name)
        out[name] = js_divergence(pool, sub)
    out["stratum"] = js_divergence(ctx.strata.counts, np.bincount(ctx.strata.stratum[rows], minlength=ctx.strata.n_strata))
    return out


def overlap(rows_a: np.ndarray, rows_b: np.ndarray) -> dict:
    """Shared rows of two subsets, as a count and as shares of each."""
    shared = int(np.intersect1d(rows_a, rows_b).size)
    return {"shared": shared, "share_of_subset": shared / len(rows_a) if len(rows_a) else 0.0,
            "share_of_uniform": shared / len(rows_b) if len(rows_b) else 0.0, "uniform_size": int(len(rows_b))}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def data_card(name: str, report: dict, figure_paths: list[str]) -> str:
    """card.md: size, composition vs pool (and uniform), constraint status, figure paths."""
    comp, pool = report["composition"], report["pool_composition"]
    uni = report.get("uniform_composition")
    b = report["budget"]
    lines = [f"# Data card: {name}", "",
             f"GDO goal preset `{report['profile']}`" + (f" with ablations {report['ablations']}" if report["ablations"] else "")
             + f", built by gdo_utils.subsets (seed {report['seed']}).", "",
             "## Size", "",
             f"- selected: **{report['size']}** of a pool of {report['pool_size']} QA pairs "
             f"(target {report['target']}, {_pct(report['size'] / max(report['pool_size'], 1))} of the pool)",
             f"- budget: {b.get('description', b['mode'])}" if b["mode"] == "override" else
             f"- budget rule: n = {b['n']} (binding term: {b['binding']}); VDS-aware target {report['target']}",
             f"- train.jsonl sha256 `{report['files']['train.jsonl']}`; selected_ids.txt sha256 "
             f"`{report['files']['selected_ids.txt']}`", ""]
    lines += ["## Composition", "", "| | pool | subset |" + (" uniform |" if uni else ""),
              "|---|---|---|" + ("---|" if uni else "")]
    for key in ("video_share", "temporal_share", "temporal_in_video_share"):
        lines.append(f"| {key} | {_pct(pool[key])} | {_pct(comp[key])} |" + (f" {_pct(uni[key])} |" if uni else ""))
    for fname in ("bucket", "duration", "temporal", "form", "q_len", "a_len"):
        for val in pool["fields"][fname]:
            lines.append(f"| {fname}={val} | {_pct(pool['fields'][fname].get(val, 0))} | "
                         f"{_pct(comp['fields'][fname].get(val, 0))} |"
                         + (f" {_pct(uni['fields'][fname].get(val, 0))} |" if uni else ""))
    lines += ["", "JS divergence vs pool (base 2): " + ", ".join(f"{k} {v:.4f}" for k, v in report["js_divergence"].items()), ""]
    lines += ["## Constraints", ""]
    q = report["quotas"]
    a = report["achieved"]
    lines += [f"- videos: {a['video']} (floor {q['min_video']}, max {q['max_video']})",
              f"- Temporal/Mixed videos: {a['temporal_video']} (floor {q['min_temporal_video']})",
              f"- source-group floors: {len(q['source_group_floors']['floors'])} groups",
              f"- at most {a['per_video_cap']} QAs per video; no duplicated question+answer text",
              f"- stage counts: {report['stage_counts']}"]
    if report["unmet_constraints"]:
        lines += ["", "**Unmet constraints:**", ""]
        lines += [f"- {u['constraint']}: required {u['required']}, achieved {u['achieved']} {u['detail']}"
                  for u in report["unmet_constraints"]]
    else:
        lines.append("- every constraint met")
    if report.get("uniform"):
        o = report["uniform"]["overlap"]
        lines += ["", f"Overlap with the uniform baseline `{report['uniform']['name']}` "
                      f"({o['uniform_size']} rows): {o['shared']} rows ({_pct(o['share_of_subset'])} of the subset)."]
    if figure_paths:
        lines += ["", "## Figures", "", "Composition of every subset of the run vs the pool (drawn by build_all):", ""]
        lines += [f"- {p}" for p in figure_paths]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- tables for the notebook
def summary_table(reports: dict[str, dict]) -> "pd.DataFrame":
    """One row per subset: size, target, shares, mean JS divergence, unmet constraints, uniform overlap."""
    import pandas as pd

    rows = {}
    for name, r in reports.items():
        c = r["composition"]
        rows[name] = {"size": r["size"], "target": r["target"], "pool": r["pool_size"],
                      "share_of_pool": r["size"] / max(r["pool_size"], 1), "video_share": c["video_share"],
                      "temporal_share": c["temporal_share"], "js_stratum": r["js_divergence"]["stratum"],
                      "unmet": len(r["unmet_constraints"]), "uniform": r["uniform"]["name"],
                      "uniform_size": r["uniform"]["size"], "overlap_with_uniform": r["uniform"]["overlap"]["shared"]}
    return pd.DataFrame(rows).T


def budget_table(reports: dict[str, dict]) -> "pd.DataFrame":
    """The budget derivation of each subset: every lower / upper term, n, the VDS-aware target."""
    import pandas as pd

    rows = {}
    for name, r in reports.items():
        b = r["budget"]
        if b["mode"] == "override":
            rows[name] = {"mode": b["description"], "n": b["n"], "target": b["target"]}
            continue
        adj = b.get("vds_adjustment") or {}
        rows[name] = {"mode": "rule", "N": b["pool_size"], "strata": b["strata"], "E=exp(H)": round(b["effective_strata"], 2),
                      "p_tail": round(b["p_tail"], 4), **{f"lower:{k}": v for k, v in b["lower_terms"].items()},
                      **{f"upper:{k}": v for k, v in b["upper_terms"].items()}, "n": b["n"], "binding": b["binding"],
                      "vds_pos_share": adj.get("positive_share"), "vds_needed": adj.get("needed"),
                      "target": b["target"]}
    return pd.DataFrame(rows).T


def constraints_table(reports: dict[str, dict]) -> "pd.DataFrame":
    """Floors and caps of each subset with what was achieved, and its fill-stage counts."""
    import pandas as pd

    rows = {}
    for name, r in reports.items():
        q, a = r["quotas"], r["achieved"]
        rows[name] = {"min_video": q["min_video"], "max_video": q["max_video"], "video": a["video"],
                      "min_temporal_video": q["min_temporal_video"], "temporal_video": a["temporal_video"],
                      "source_group_floors": len(q["source_group_floors"]["floors"]),
                      **r["stage_counts"], "unmet": ", ".join(u["constraint"] for u in r["unmet_constraints"]) or "-"}
    return pd.DataFrame(rows).T
