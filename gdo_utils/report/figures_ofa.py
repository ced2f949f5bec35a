"""OFA figures: Rel per method and pool, selector training curves, confidence of pool vs selected, sweep sensitivity.

Pure drawing in seaborn's colour-blind palette; the caller saves (gdo_utils.plots.save_figure).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .figures_gdo import _empty, finish, palette


def plot_rel(rel: pd.DataFrame, title: str = "") -> plt.Figure:
    """Horizontal bars of Rel per method, one panel per pool; `rel` has pool, method, paper, rel; 100 = full data."""
    cb = palette()
    pools = list(dict.fromkeys(rel["pool"])) or ["(none)"]
    papers = list(dict.fromkeys(rel["paper"]))
    colors = {p: cb[i % len(cb)] for i, p in enumerate(papers)}
    height = max(3.0, 0.28 * rel.groupby("pool").size().max() + 1.2) if len(rel) else 3.0
    fig, axes = plt.subplots(1, len(pools), figsize=(5.6 * len(pools), height), squeeze=False)
    for ax, pool in zip(axes[0], pools):
        r = rel[(rel["pool"] == pool)].dropna(subset=["rel"])
        if r.empty:
            _empty(ax, f"{pool}: no Rel")
            continue
        y = np.arange(len(r))
        ax.barh(y, r["rel"], color=[colors[p] for p in r["paper"]])
        ax.set_yticks(y, r["method"], fontsize=7)
        ax.invert_yaxis()
        ax.axvline(100, color=cb[7], ls="--", lw=1)
        for yi, v in zip(y, r["rel"]):
            ax.text(v, yi, f" {v:.1f}", va="center", fontsize=6)
        lo = float(r["rel"].min())
        ax.set_xlim(min(85.0, lo - 3), max(112.0, float(r["rel"].max()) + 3))
        ax.set_xlabel("Rel (full data = 100)")
        ax.set_title(pool, fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[p]) for p in papers]
    if handles:
        fig.legend(handles, papers, loc="lower center", ncol=min(3, len(papers)), fontsize=7, bbox_to_anchor=(0.5, -0.02))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def plot_selector_curves(history: pd.DataFrame, chosen_epoch: int, k: int, target: float | None = None,
                         title: str = "") -> plt.Figure:
    """Validation macro accuracy, coverage and confidence (median, q10-q90) per epoch, the chosen epoch marked."""
    cb = palette()
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.4))
    e = history["epoch"]
    ax[0].plot(e, history["val_macro_acc"], color=cb[0], label="macro accuracy")
    if target is not None:
        ax[0].axhline(target, color=cb[7], ls=":", label=f"target {target:g}")
    ax[0].set_title("validation macro accuracy", fontsize=9)
    ax[1].plot(e, history["val_coverage"], color=cb[2], label="clusters predicted")
    ax[1].axhline(k, color=cb[7], ls=":", label=f"K = {k}")
    ax[1].set_title("coverage", fontsize=9)
    ax[2].plot(e, history["conf_q50"], color=cb[1], label="median")
    ax[2].fill_between(e, history["conf_q10"], history["conf_q90"], color=cb[1], alpha=0.25, label="q10-q90")
    ax[2].set_title("max-softmax confidence (validation)", fontsize=9)
    for a in ax:
        a.axvline(chosen_epoch, color=cb[3], ls="--", lw=1, label=f"chosen epoch {chosen_epoch}")
        a.set_xlabel("epoch")
        a.legend(fontsize=7)
    return finish(fig, title)


def plot_confidence(pools: dict[str, tuple[np.ndarray, np.ndarray]], title: str = "") -> plt.Figure:
    """Per pool: histogram of the scored pool's confidence and of the selected samples' (same bins)."""
    cb = palette()
    names = list(pools) or ["(none)"]
    fig, axes = plt.subplots(1, len(names), figsize=(5.0 * len(names), 3.3), squeeze=False)
    for ax, name in zip(axes[0], names):
        if name not in pools or not len(pools[name][0]):
            _empty(ax, f"{name}: no scores")
            continue
        conf, chosen = pools[name]
        bins = np.linspace(float(np.min(conf)), float(np.max(conf)) + 1e-9, 31)
        ax.hist(conf, bins=bins, color=cb[0], alpha=0.55, label=f"pool ({len(conf)})")
        ax.hist(chosen, bins=bins, color=cb[3], alpha=0.8, label=f"selected ({len(chosen)})")
        ax.set_xlabel("max-softmax confidence")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
    return finish(fig, title)


SWEEP_PANELS = (("rel", "Rel (full data = 100)"), ("conf_selected_median", "median confidence of the selection"),
                ("clusters_covered_share", "share of clusters in the selection"), ("jaccard_default", "overlap with the default selection (Jaccard)"))


def plot_sensitivity(sweep: pd.DataFrame, title: str = "") -> plt.Figure:
    """Per pool (rows) and measure (columns): the measure vs budget ratio, one line per K."""
    cb = palette()
    pools = list(dict.fromkeys(sweep["pool"])) or ["(none)"]
    panels = [(c, lab) for c, lab in SWEEP_PANELS if c in sweep and sweep[c].notna().any()]
    panels = panels or [("n_selected", "selected samples")]
    fig, axes = plt.subplots(len(pools), len(panels), figsize=(3.8 * len(panels), 3.0 * len(pools)), squeeze=False)
    ks = sorted(set(sweep["k"])) if len(sweep) else []
    for r, pool in enumerate(pools):
        for c, (col, label) in enumerate(panels):
            ax = axes[r][c]
            s = sweep[sweep["pool"] == pool]
            for i, k in enumerate(ks):
                q = s[s["k"] == k].sort_values("budget_ratio")
                ax.plot(q["budget_ratio"], q[col], marker="o", color=cb[i % len(cb)], label=f"K = {k}")
            ax.set_xlabel("budget ratio")
            ax.set_title(f"{pool}: {label}", fontsize=8)
            if ks:
                ax.legend(fontsize=6)
    return finish(fig, title)
