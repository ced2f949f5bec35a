"""Figures of the subsets stage: composition vs pool vs uniform, score distributions, stage counts.

Functions take report dictionaries (or score tables) and return a matplotlib Figure; save them with
`gdo_utils.plots.save_figure` under outputs/<run>/figures/.
"""
from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


def _grouped_bars(ax: plt.Axes, table: pd.DataFrame, title: str) -> None:
    """Grouped bars: one group per row of `table`, one bar per column (a subset)."""
    x = np.arange(len(table.index))
    w = 0.8 / max(len(table.columns), 1)
    for i, col in enumerate(table.columns):
        ax.bar(x + i * w - 0.4 + w / 2, table[col].to_numpy(), w, label=col, color=PALETTE[i % len(PALETTE)])
    ax.set_xticks(x)
    ax.set_xticklabels([str(i) for i in table.index], rotation=45, ha="right", fontsize=7)
    ax.set_title(title)


def composition_table(compositions: Mapping[str, dict], field: str) -> pd.DataFrame:
    """Shares of one stratum field (rows: values in the field's own order, columns: the compositions)."""
    order: dict[str, None] = {}
    for c in compositions.values():
        order.update(dict.fromkeys(c["fields"][field]))
    table = pd.DataFrame({k: c["fields"][field] for k, c in compositions.items()})
    return table.reindex(list(order)).fillna(0.0)


def plot_composition(compositions: Mapping[str, dict], title: str = "", top_groups: int = 10) -> plt.Figure:
    """Video / temporal shares, duration, question form, q-length and top source groups per subset."""
    fig, ax = plt.subplots(1, 5, figsize=(22, 4))
    shares = pd.DataFrame({k: {"video": c["video_share"], "temporal": c["temporal_share"],
                               "temporal in video": c["temporal_in_video_share"]} for k, c in compositions.items()})
    _grouped_bars(ax[0], shares, "shares")
    ax[0].legend(fontsize=7)
    for a, field in zip(ax[1:4], ("duration", "form", "q_len")):
        _grouped_bars(a, composition_table(compositions, field), field)
    groups = composition_table(compositions, "source_group")
    first = next(iter(compositions))
    groups = groups.loc[groups[first].sort_values(ascending=False).index[:top_groups]]
    _grouped_bars(ax[4], groups, f"top {top_groups} source groups")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_score_distributions(scores: pd.DataFrame, selections: Mapping[str, np.ndarray], bins: int = 40) -> plt.Figure:
    """Histogram of the level-2 score in the pool and in each selection (rows), images and videos apart."""
    fig, ax = plt.subplots(1, 2, figsize=(12, 3.6))
    edges = np.linspace(scores["score"].min(), scores["score"].max() + 1e-9, bins + 1)
    for a, video, name in ((ax[0], False, "image"), (ax[1], True, "video")):
        mask = scores["is_video"].to_numpy() == video
        a.hist(scores["score"].to_numpy()[mask], bins=edges, density=True, alpha=0.35, color="#8C8C8C", label="pool")
        for i, (label, rows) in enumerate(selections.items()):
            r = np.asarray(rows)
            r = r[mask[r]]
            if len(r):
                a.hist(scores["score"].to_numpy()[r], bins=edges, density=True, histtype="step", lw=1.5,
                       color=PALETTE[i % len(PALETTE)], label=label)
        a.set_title(f"level-2 score, {name} candidates")
        a.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_stage_counts(reports: Mapping[str, dict]) -> plt.Figure:
    """Stacked bars: how many rows each fill stage contributed to each subset."""
    table = pd.DataFrame({k: r["stage_counts"] for k, r in reports.items()}).T
    fig, ax = plt.subplots(figsize=(8, 3.6))
    bottom = np.zeros(len(table))
    for i, col in enumerate(table.columns):
        ax.bar(table.index, table[col], bottom=bottom, label=col, color=PALETTE[i % len(PALETTE)])
        bottom += table[col].to_numpy()
    ax.set_title("rows per fill stage")
    ax.legend(fontsize=7)
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig
