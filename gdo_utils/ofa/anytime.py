"""Select anytime: many budgets from one frozen scoring, and the selection beside its random baseline.

OFA's selector is trained once; a new budget only re-runs the per-cluster least-confidence pick on
the stored scores (outputs/<run>/ofa/<pool>/scores.parquet). `budget_sweep` does exactly that for
several ratios without touching the selector or the scores; `versus_random` compares the selection
with the random subset of the same size written by `ofa.training` (ofa_random_<pool>).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..config import Params
from ..io import read_json
from .pipeline import SCORES, pool_dir, selector_dir
from .select import select
from .training import subset_name


def _scored(params: Params, pool: str) -> tuple[pd.DataFrame, int]:
    scores = pd.read_parquet(pool_dir(params, pool) / SCORES)
    k = int(read_json(selector_dir(params) / "selector.json")["feature_spec"]["k"])
    return scores[scores["scored"]].reset_index(drop=True), k


def budget_sweep(params: Params, pool: str, ratios: list[float]) -> pd.DataFrame:
    """One row per budget ratio: size, clusters covered, confidence of the pick, share kept from the previous budget."""
    scored, k = _scored(params, pool)
    conf, clusters = scored["conf"].to_numpy(), scored["cluster"].to_numpy()
    rows, prev = [], None
    for r in sorted(ratios):
        s = select(conf, clusters, k, r, seed=params.seed, progress=False)
        ids = set(scored["sample_id"].to_numpy()[s.indices])
        rows.append({"budget_ratio": r, "n_selected": len(ids), "clusters_covered": int((s.taken > 0).sum()),
                     "conf_mean": float(conf[s.indices].mean()), "conf_max": float(conf[s.indices].max()),
                     "kept_from_previous": (len(prev & ids) / len(prev)) if prev else float("nan")})
        prev = ids
    out = pd.DataFrame(rows).set_index("budget_ratio")
    out.attrs["k"] = k
    return out


def plot_budget_sweep(sweep: pd.DataFrame, pool: str) -> plt.Figure:
    """Subset size and mean confidence of the pick against the budget ratio."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.plot(sweep.index, sweep["n_selected"], marker="o", color="C0")
    ax.set_xlabel("budget ratio")
    ax.set_ylabel("samples selected", color="C0")
    ax2 = ax.twinx()
    ax2.plot(sweep.index, sweep["conf_mean"], marker="s", color="C1")
    ax2.set_ylabel("mean confidence of the pick", color="C1")
    ax.set_title(f"{pool}: one scoring, every budget", fontsize=10)
    fig.tight_layout()
    return fig


def versus_random(params: Params, pool: str) -> pd.DataFrame:
    """The OFA selection and the random subset of the same size: size, clusters covered, confidence."""
    scored, k = _scored(params, pool)
    conf = scored.set_index("sample_id")["conf"]
    cluster = scored.set_index("sample_id")["cluster"]
    median = float(conf.median())
    rows = {}
    for kind in ("ofa", "ofa_random"):
        ids = (params.stage_dir("subsets", subset_name(kind, pool)) / "selected_ids.txt").read_text().split()
        c = conf.loc[ids]
        rows[subset_name(kind, pool)] = {"n": len(ids), "clusters_covered": int(cluster.loc[ids].nunique()), "k": k,
                                         "conf_mean": float(c.mean()), "conf_median": float(c.median()),
                                         "share_below_pool_median_conf": float((c < median).mean())}
    return pd.DataFrame(rows).T


def plot_versus_random(params: Params, pool: str) -> plt.Figure:
    """Confidence histograms of the pool, the OFA selection and its random baseline."""
    scored, _ = _scored(params, pool)
    conf = scored.set_index("sample_id")["conf"]
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    bins = np.linspace(float(conf.min()), float(conf.max()), 21)
    ax.hist(conf, bins=bins, color="lightgray", label="pool (scored)")
    for i, kind in enumerate(("ofa", "ofa_random")):
        ids = (params.stage_dir("subsets", subset_name(kind, pool)) / "selected_ids.txt").read_text().split()
        ax.hist(conf.loc[ids], bins=bins, histtype="step", lw=2, color=f"C{i}", label=subset_name(kind, pool))
    ax.set_xlabel("selector confidence (max softmax)")
    ax.set_ylabel("samples")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
