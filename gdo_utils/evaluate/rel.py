"""OFA's relative performance: Rel = 100/B * sum_b score_b(subset) / score_b(full data), per pool.

Computed from the trajectory (C3): for pool P the full-data reference is the training run
`ofa_full_<P>`, the compared subsets are `ofa_<P>` (the selector's 15%) and `ofa_random_<P>`
(random 15%). Each run is taken at its last checkpoint (most samples seen), each benchmark at its
overall score (MME: its raw perception score, as the paper does). B counts the benchmarks both the
subset and the full-data run have a score for; a benchmark whose full-data score is 0 cannot form a
ratio and is left out, named in `excluded` (the demo's tiny model can score 0 anywhere).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..io import write_text

REL_COLUMNS = ["pool", "subset", "role", "checkpoint", "samples_seen", "B", "rel", "excluded", "note"]


def subset_names(pool: str) -> dict[str, str]:
    """role -> training-run (subset) name for one pool (contract C1)."""
    return {"ofa": f"ofa_{pool}", "random": f"ofa_random_{pool}", "full": f"ofa_full_{pool}"}


def final_scores(traj: pd.DataFrame, subset: str, benchmarks: Sequence[str] | None = None) -> pd.DataFrame:
    """benchmark -> overall score at the subset's last checkpoint (columns benchmark, accuracy, checkpoint, samples_seen)."""
    d = traj[(traj["subset"] == subset) & (traj["level"] == "overall")]
    if benchmarks is not None:
        d = d[d["benchmark"].isin(list(benchmarks))]
    d = d[d["accuracy"].notna()]
    if d.empty:
        return pd.DataFrame(columns=["benchmark", "accuracy", "checkpoint", "samples_seen"])
    last = d.sort_values("samples_seen", kind="mergesort").groupby("benchmark", sort=True).tail(1)
    return last[["benchmark", "accuracy", "checkpoint", "samples_seen"]].sort_values("benchmark").reset_index(drop=True)


def rel_note(b: int, excluded: Sequence[str]) -> str:
    """Why Rel is undefined (B = 0) or rests on fewer benchmarks, in words; '' when nothing was left out."""
    if b == 0:
        return ("Rel undefined: the full-data run scores 0 on every shared benchmark (" + ", ".join(sorted(excluded))
                + "), so no ratio exists" if excluded else "Rel undefined: no benchmark scored by both runs")
    if excluded:
        return f"full-data score 0 on {', '.join(sorted(excluded))}: left out, Rel over the other {b}"
    return ""


def relative_performance(traj: pd.DataFrame, pools: Sequence[str], benchmarks: Sequence[str] | None = None
                         ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(Rel per pool and subset, the per-benchmark ratios behind it). Pools without a full-data run are skipped."""
    rel_rows, ratio_rows = [], []
    for pool in pools:
        names = subset_names(pool)
        full = final_scores(traj, names["full"], benchmarks).set_index("benchmark")["accuracy"]
        if full.empty:
            continue
        for role in ("ofa", "random", "full"):
            sub = final_scores(traj, names[role], benchmarks)
            if sub.empty:
                continue
            ratios, excluded = [], []
            for r in sub.itertuples():
                if r.benchmark not in full.index:
                    continue
                ref = float(full[r.benchmark])
                if ref == 0.0:
                    excluded.append(r.benchmark)
                    continue
                ratio = float(r.accuracy) / ref
                ratios.append(ratio)
                ratio_rows.append({"pool": pool, "subset": names[role], "role": role, "benchmark": r.benchmark,
                                   "score": float(r.accuracy), "full_score": ref, "ratio": ratio})
            rel_rows.append({"pool": pool, "subset": names[role], "role": role, "checkpoint": sub["checkpoint"].iloc[-1],
                             "samples_seen": int(sub["samples_seen"].max()), "B": len(ratios),
                             "rel": 100.0 * float(np.mean(ratios)) if ratios else float("nan"),
                             "excluded": ",".join(sorted(excluded)), "note": rel_note(len(ratios), excluded)})
    rel = pd.DataFrame(rel_rows, columns=REL_COLUMNS)
    ratios = pd.DataFrame(ratio_rows, columns=["pool", "subset", "role", "benchmark", "score", "full_score", "ratio"])
    return rel, ratios


def markdown_table(df: pd.DataFrame) -> str:
    """A pipe table (floats to 2 decimals) without needing `tabulate`."""
    def cell(v: object) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_rel_tables(rel: pd.DataFrame, ratios: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """rel.{csv,md,tex} and rel_ratios.csv under out_dir (the eval folder)."""
    out = Path(out_dir)
    paths = [write_text(out / "rel.csv", rel.to_csv(index=False)),
             write_text(out / "rel.md", markdown_table(rel)),
             write_text(out / "rel.tex", rel.to_latex(index=False, float_format="%.2f")),
             write_text(out / "rel_ratios.csv", ratios.to_csv(index=False))]
    return paths
