"""GDO figures: convergence per benchmark, the frontier, the MVBench delta heatmap, the method schematic.

Pure drawing: each function takes tables and returns a Figure in seaborn's colour-blind palette; the
caller saves it (gdo_utils.plots.save_figure). Sample counts are in thousands.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.patches import FancyBboxPatch
from matplotlib.ticker import FuncFormatter, NullFormatter

from .fmt import kilo
from .peak import PeakMatch


def palette() -> list:
    """seaborn's colour-blind palette (10 colours)."""
    return sns.color_palette("colorblind")


def diverging_cmap() -> LinearSegmentedColormap:
    """Blue - white - orange from the colour-blind palette (safe for the common colour-vision deficiencies)."""
    cb = palette()
    return LinearSegmentedColormap.from_list("cb_diverging", [cb[0], (1, 1, 1), cb[1]])


def finish(fig: plt.Figure, title: str = "") -> plt.Figure:
    """Suptitle (when given) and tight layout."""
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def log_samples_axis(ax) -> None:
    """Log x axis labelled with plain numbers (13.3, 100, 512), no minor labels."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_convergence(curves: dict[str, dict[str, pd.DataFrame]], refs: dict[str, float],
                     peaks: dict[str, PeakMatch], title: str = "", notes: dict[str, str] | None = None) -> plt.Figure:
    """Accuracy vs samples seen (k, log axis) per benchmark: Uni-10x and GDO, R as a line, the peak-match point marked.

    `curves[b][series]` has samples_k and accuracy; `peaks[b].samples` is in thousands.
    """
    cb = palette()
    names = list(curves) or ["(none)"]
    fig, axes = plt.subplots(1, len(names), figsize=(4.3 * len(names), 3.6), squeeze=False)
    for ax, b in zip(axes[0], names):
        series = curves.get(b, {})
        if not any(len(s) for s in series.values()):
            _empty(ax, f"{b}: not evaluated")
            continue
        for (name, df), color, marker in zip(series.items(), (cb[0], cb[1]), ("o", "s")):
            if len(df):
                ax.plot(df["samples_k"], df["accuracy"], marker=marker, color=color, label=name)
        r = refs.get(b, float("nan"))
        if not math.isnan(r):
            ax.axhline(r, color=cb[7], ls="--", lw=1, label=f"Uni-10x end R = {r:.2f}")
        pm = peaks.get(b)
        if pm is not None and pm.reached:
            ax.plot([pm.samples], [pm.target], marker="*", ms=14, color=cb[2], zorder=5,
                    label=f"peak match {kilo(pm.samples)}")
            ax.axvline(pm.samples, color=cb[2], ls=":", lw=1)
        log_samples_axis(ax)
        ax.set_xlabel("training samples seen (k)")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(b + (f"\n{notes[b]}" if notes and b in notes else ""), fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    return finish(fig, title)


def plot_frontier(points: pd.DataFrame, title: str = "") -> plt.Figure:
    """Per benchmark: each profile's (1x size, accuracy) and Uni-10x's; `points` has benchmark, label, samples_k, accuracy, kind."""
    cb = palette()
    benches = list(dict.fromkeys(points["benchmark"])) or ["(none)"]
    fig, axes = plt.subplots(1, len(benches), figsize=(4.0 * len(benches), 3.5), squeeze=False)
    for ax, b in zip(axes[0], benches):
        p = points[(points["benchmark"] == b)].dropna(subset=["samples_k", "accuracy"])
        if p.empty:
            _empty(ax, f"{b}: not evaluated")
            continue
        labels = [lab for lab in dict.fromkeys(p["label"])]
        for i, lab in enumerate(labels):
            q = p[p["label"] == lab]
            uniform = (q["kind"] == "uniform").all()
            ax.scatter(q["samples_k"], q["accuracy"], s=60, marker="D" if uniform else "o",
                       color=cb[7] if uniform else cb[i % len(cb)], label=lab, zorder=3)
            if uniform:
                ax.axhline(float(q["accuracy"].iloc[0]), color=cb[7], ls="--", lw=1)
        log_samples_axis(ax)
        ax.set_xlabel("training samples (k, 1x size)")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(b, fontsize=9)
        ax.legend(fontsize=7)
    return finish(fig, title)


def plot_heatmap(matrix: pd.DataFrame, title: str = "") -> plt.Figure:
    """Profiles (rows) x MVBench subtasks (columns) deltas in pp, centred on 0, cells labelled (blank when missing)."""
    fig, ax = plt.subplots(figsize=(max(8, 0.55 * matrix.shape[1] + 2), 0.5 * matrix.shape[0] + 2.2))
    values = matrix.astype(float)
    if values.notna().any().any():
        lim = float(np.nanmax(np.abs(values.to_numpy()))) or 1.0
        sns.heatmap(values, ax=ax, cmap=diverging_cmap(), center=0, vmin=-lim, vmax=lim, annot=True, fmt=".1f",
                    annot_kws={"fontsize": 7}, cbar_kws={"label": "Δ vs Uni-10x (pp)"}, linewidths=0.5)
    else:
        _empty(ax, "no MVBench subtask evaluated")
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(axis="x", labelrotation=60, labelsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


SCHEMATIC = (
    ("Candidate pool", "image + video QA\n(OneVision, LLaVA-Video)"),
    ("Descriptors", "motion, VDS, PPL,\nTNC, SC, coverage"),
    ("Score ρ(x)", "level 1 quality\n+ level 2 text terms"),
    ("Goal presets", "MinLoss, Diverse,\nTemp, Temp+"),
    ("Subsets", "1x subsets vs the\nUni-10x baseline"),
    ("Training", "same backbone,\n1 epoch, quarter ckpts"),
    ("Evaluation", "MVBench, VideoMME,\nMLVU, LVBench"),
)


def plot_schematic() -> plt.Figure:
    """The GDO method as boxes and arrows: pool -> descriptors -> score -> presets -> subsets -> training -> evaluation."""
    cb = palette()
    n = len(SCHEMATIC)
    fig, ax = plt.subplots(figsize=(2.05 * n, 2.4))
    ax.set_xlim(0, n)
    ax.set_ylim(0, 1)
    ax.axis("off")
    for i, (head, body) in enumerate(SCHEMATIC):
        color = cb[0] if i < 4 else cb[2]
        ax.add_patch(FancyBboxPatch((i + 0.08, 0.18), 0.84, 0.64, boxstyle="round,pad=0.02", fc=(*color, 0.15),
                                    ec=color, lw=1.5))
        ax.text(i + 0.5, 0.68, head, ha="center", va="center", fontsize=9, fontweight="bold")
        ax.text(i + 0.5, 0.40, body, ha="center", va="center", fontsize=7)
        if i < n - 1:
            ax.annotate("", xy=(i + 1.08, 0.5), xytext=(i + 0.92, 0.5), arrowprops={"arrowstyle": "->", "lw": 1.5})
    ax.text(2.0, 0.04, "only the training subset changes (GDO's contract)", ha="center", fontsize=7, color=cb[0])
    ax.text(5.5, 0.04, "accuracy vs samples seen: peak match", ha="center", fontsize=7, color=cb[2])
    fig.tight_layout()
    return fig
