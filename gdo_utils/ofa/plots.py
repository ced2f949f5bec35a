"""OFA figures for notebook 02: training curves with the chosen epoch, confidence of pool vs subset,
quota vs taken per cluster. Each returns a Figure; `save` writes it under outputs/<run>/figures/."""
from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..media import MediaError, load_image


def plot_training_curves(history: pd.DataFrame, chosen_epoch: int, k: int, target: float | None = None) -> plt.Figure:
    """Loss, validation (macro) accuracy, coverage and confidence / gate bands per epoch; chosen epoch marked."""
    fig, ax = plt.subplots(1, 4, figsize=(17, 3.4))
    e = history["epoch"]
    ax[0].plot(e, history["train_loss"], label="train")
    ax[0].plot(e, history["val_loss"], label="validation")
    ax[0].set_title("cross-entropy")
    ax[1].plot(e, history["val_acc"], label="accuracy")
    ax[1].plot(e, history["val_macro_acc"], label="macro accuracy")
    if target is not None:
        ax[1].axhline(target, color="grey", ls=":", label=f"target {target:g}")
    ax[1].set_title("validation accuracy")
    ax[2].plot(e, history["val_coverage"], color="#55A868")
    ax[2].axhline(k, color="grey", ls=":", label=f"K = {k}")
    ax[2].set_title("coverage (clusters predicted on validation)")
    for name, color in (("conf", "#4C72B0"), ("gate", "#DD8452")):
        ax[3].plot(e, history[f"{name}_q50"], color=color, label=f"{name} median")
        ax[3].fill_between(e, history[f"{name}_q10"], history[f"{name}_q90"], color=color, alpha=0.2)
    ax[3].set_title("confidence and gate (q10-q90)")
    for a in ax:
        a.axvline(chosen_epoch, color="#C44E52", ls="--", lw=1, label=f"chosen epoch {chosen_epoch}")
        a.set_xlabel("epoch")
        a.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_confidence(scores: pd.DataFrame, selected_ids: list[str], title: str = "") -> plt.Figure:
    """Histograms of max-softmax confidence and entropy: whole scored pool vs the selected subset."""
    scored = scores[scores["scored"]]
    chosen = scored["sample_id"].isin(set(selected_ids))
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
    for a, col in zip(ax, ("conf", "entropy")):
        bins = np.linspace(scored[col].min(), scored[col].max(), 31) if len(scored) else 10
        a.hist(scored[col], bins=bins, color="#4C72B0", alpha=0.6, label=f"pool ({len(scored)})")
        a.hist(scored.loc[chosen, col], bins=bins, color="#C44E52", alpha=0.8, label=f"selected ({int(chosen.sum())})")
        a.set_title("max-softmax confidence" if col == "conf" else "entropy (nats)")
        a.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_quotas(report: dict, title: str = "") -> plt.Figure:
    """Per-cluster size (share of the pool) vs quota (share of the subset), sorted by size."""
    c = pd.DataFrame(report["clusters"]).sort_values("size", ascending=False, kind="stable")
    c = c[c["size"] > 0]
    fig, ax = plt.subplots(figsize=(max(6, 0.12 * len(c) + 3), 3.2))
    x = np.arange(len(c))
    ax.bar(x - 0.2, c["size"] / max(c["size"].sum(), 1), width=0.4, label="share of scored pool", color="#4C72B0")
    ax.bar(x + 0.2, c["taken"] / max(c["taken"].sum(), 1), width=0.4, label="share of subset", color="#C44E52")
    ax.set_xticks(x if len(c) <= 40 else [])
    if len(c) <= 40:
        ax.set_xticklabels(c["cluster"], fontsize=7)
    ax.set_xlabel("cluster (largest first)")
    ax.legend(fontsize=8)
    ax.set_title(title or f"{report['pool']}: per-cluster quotas")
    fig.tight_layout()
    return fig


def plot_scored_examples(rows: pd.DataFrame, title: str = "", wrap: int = 38) -> plt.Figure:
    """One panel per sample (its image, or a blank when unreadable) titled with conf, cluster, question, answer."""
    import textwrap

    n = max(len(rows), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n, 3.9), squeeze=False)
    for a, (_, row) in zip(axes[0], rows.iterrows()):
        a.axis("off")
        media = list(row["media"]) if isinstance(row.get("media"), (list, np.ndarray)) else []
        try:
            if media:
                a.imshow(load_image(media[0]))
        except MediaError:
            pass
        q = textwrap.shorten(str(row["question"]), 90)
        text = f"conf {row['conf']:.3f} - cluster {row['cluster']}\n" + "\n".join(textwrap.wrap(f"Q: {q}", wrap)[:3])
        a.set_title(text + f"\nA: {textwrap.shorten(str(row['answer']), wrap)}", fontsize=7, loc="left")
    for a in axes[0][len(rows):]:
        a.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
