"""GDO figures drawn as the release README draws them: convergence per benchmark, the frontier, the MVBench delta
heatmap, the method overview.

- convergence (release assets/teaser.png): accuracy vs training samples (k) on a linear axis, Uni-10x as squares,
  GDO as circles, the peak-match level as a dashed line from the match point (a star) to the Uni-10x end, the
  speed-up written above it, one legend above the panels (it covers no point).
- frontier (assets/frontiers.png): a dumbbell per benchmark - each profile's Uni-10x (square) and GDO (circle)
  accuracy joined by a bar, the delta written beside it.
- heatmap (assets/mvbench_heatmap.png): profiles x MVBench subtasks, negative deltas orange, zero grey, positive
  blue (lightest at the largest gain), cells labelled with signed deltas.
- method (assets/method.png): five panels - shared pool, six descriptors, shared scorer, goal controls, output
  subsets.

Pure drawing: each function takes tables and returns a Figure; the caller saves it (gdo_utils.plots.save_figure).
"""
from __future__ import annotations

import math
import warnings
from decimal import ROUND_HALF_UP, Decimal

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch
from matplotlib.ticker import MaxNLocator

from .fmt import kilo, signed
from .peak import PeakMatch

UNI_COLOR = "#6b7b8c"     # the release's slate grey for Uni-10x
GDO_COLOR = "#d9693f"     # the release's orange for GDO
MATCH_COLOR = "#f2a51a"   # the match-point star
PROFILE_COLORS = {"MinLoss": "#c9a27e", "Diverse": "#9dbdb8", "Temp": "#7fb0d8", "Temp+": GDO_COLOR}


def palette() -> list:
    """seaborn's colour-blind palette (10 colours)."""
    return sns.color_palette("colorblind")


def heatmap_cmap() -> LinearSegmentedColormap:
    """The release heatmap's colours: orange (negative) - grey (zero) - blue - near-white (largest positive)."""
    return LinearSegmentedColormap.from_list("gdo_heatmap", ["#d9865a", "#c9c3b6", "#8fb4d6", "#eef4fb"])


def finish(fig: plt.Figure, title: str = "") -> plt.Figure:
    """Suptitle (when given) and tight layout."""
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="grey", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _sample_ticks(ax, xmax: float) -> None:
    """Linear x axis from 0: four equal steps to the Uni-10x end when they are round numbers (0, 128, 256, 384, 512
    in the paper), else matplotlib's integer ticks (a toy run's 35.5-sample steps would not read)."""
    step = xmax / 4
    if xmax > 0 and float(step).is_integer():
        ax.set_xticks([i * step for i in range(5)])
        ax.set_xticklabels([f"{i * step:g}" for i in range(5)])
    else:
        ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
    ax.set_xlim(0, xmax * 1.02 if xmax > 0 else 1)


def plot_convergence(curves: dict[str, dict[str, pd.DataFrame]], refs: dict[str, float],
                     peaks: dict[str, PeakMatch | None], title: str = "", notes: dict[str, str] | None = None,
                     speedups: dict[str, float] | None = None, empty: dict[str, str] | None = None,
                     chance: dict[str, float] | None = None) -> plt.Figure:
    """Accuracy vs training samples (k) per benchmark, as the release's convergence figure.

    `curves[b]` has "Uni-10x" and "GDO" frames (samples_k, accuracy); `refs[b]` is R; `peaks[b]` the match point
    (None or not reached: no star, no line - the caller says why in `notes[b]`); `speedups[b]` the label over the
    dashed line; `empty[b]` the text of a panel without points; `chance[b]` a dotted chance line (run mode).
    Samples are in thousands; when every count is below 1k (a toy run) the axis shows plain sample counts.
    """
    names = list(curves) or ["(none)"]
    top = max([float(df["samples_k"].max()) for c in curves.values() for df in c.values() if len(df)] or [0.0])
    scale, unit = (1000.0, "Training Samples") if 0 < top < 1 else (1.0, "Training Samples (k)")
    curves = {b: {k: df.assign(samples_k=df["samples_k"] * scale) for k, df in c.items()} for b, c in curves.items()}
    peaks = {b: (None if pm is None else PeakMatch(pm.samples * scale, pm.target, pm.reached, pm.at_first_checkpoint,
                                                    pm.segment)) for b, pm in peaks.items()}
    fig, axes = plt.subplots(1, len(names), figsize=(4.4 * len(names), 3.7), squeeze=False)
    for ax, b in zip(axes[0], names):
        series = curves.get(b, {})
        if not any(len(s) for s in series.values()):
            _empty(ax, (empty or {}).get(b, f"{b}: not evaluated"))
            ax.set_title(b, fontsize=10, fontweight="bold")
            continue
        uni, gdo = series.get("Uni-10x", pd.DataFrame()), series.get("GDO", pd.DataFrame())
        if len(uni):
            ax.plot(uni["samples_k"], uni["accuracy"], marker="s", color=UNI_COLOR, lw=2, ms=5, zorder=3)
        if len(gdo):
            ax.plot(gdo["samples_k"], gdo["accuracy"], marker="o", color=GDO_COLOR, lw=2, ms=4, zorder=4)
        pm, r = peaks.get(b), refs.get(b, float("nan"))
        xmax = float(max([uni["samples_k"].max() if len(uni) else 0, gdo["samples_k"].max() if len(gdo) else 0]))
        if pm is not None and pm.reached and not math.isnan(r):
            x_end = float(uni["samples_k"].max()) if len(uni) else xmax
            ax.plot([pm.samples, x_end], [r, r], ls="--", color="#4a5563", lw=1.2, zorder=2)
            ax.plot([pm.samples], [r], marker="*", ms=15, color=MATCH_COLOR, zorder=6)
            s = (speedups or {}).get(b)
            if s is not None and not math.isnan(s):
                ax.annotate(f"~{s:.1f}x", ((pm.samples + x_end) / 2, r), xytext=(0, 5), textcoords="offset points",
                            ha="center", va="bottom", fontsize=9, color="#4a5563")
        _sample_ticks(ax, float(uni["samples_k"].max()) if len(uni) else xmax)
        ax.set_facecolor("#f2f2f2")
        ax.grid(True, color="white", lw=1.2)
        ax.set_axisbelow(True)
        ax.set_ylabel("Accuracy (%)", fontsize=9)
        ax.set_xlabel(unit, fontsize=9)
        ax.set_title(b, fontsize=10, fontweight="bold")
        c = (chance or {}).get(b, float("nan"))
        if not math.isnan(c):
            ax.axhline(c, color="#999999", ls=":", lw=1.2, zorder=1)
            ax.text(0.99, c, f"chance {c:.1f}%", transform=ax.get_yaxis_transform(), ha="right", va="bottom",
                    fontsize=7, color="#666666")
            lo, hi = ax.get_ylim()
            ax.set_ylim(min(lo, -2.0), max(hi, c + 15.0))
        if notes and b in notes:
            ax.text(0.02, 0.97, notes[b], transform=ax.transAxes, fontsize=6.5, color="#444444", va="top", wrap=True)
        ax.margins(y=0.12)
    handles = [Line2D([], [], color=UNI_COLOR, marker="s", lw=2, label="Uni-10x"),
               Line2D([], [], color=GDO_COLOR, marker="o", lw=2, label="GDO"),
               Line2D([], [], color="#4a5563", ls="--", label="Peak Match"),
               Line2D([], [], color=MATCH_COLOR, marker="*", ms=12, lw=0, label="Match Point")]
    fig.legend(handles=handles, loc="upper center", ncol=4, frameon=False, fontsize=9, bbox_to_anchor=(0.5, 1.0))
    if title:
        fig.suptitle(title, fontsize=9, y=0.02, va="bottom", color="#444444")
    fig.tight_layout(rect=(0, 0.05 if title else 0, 1, 0.93))
    return fig


def delta_label(x: float) -> str:
    """One decimal, halves rounded up as the release's frontier labels are (+0.85 -> '+0.9', +1.45 -> '+1.5')."""
    q = Decimal(f"{float(x):.9f}").quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return ("+" if q > 0 else "-" if q < 0 else "") + format(abs(q), ".1f")


def plot_frontier(points: pd.DataFrame, title: str = "", empty_text: dict[str, str] | None = None) -> plt.Figure:
    """Dumbbells per benchmark (2 x 2): each profile's Uni-10x (square) and GDO (circle) accuracy, the delta beside.

    `points` has benchmark, profile, uni10x, gdo, delta (pp; the label printed, one decimal); rows whose accuracies
    are missing show `empty_text[profile]` (e.g. "not trained on the demo") instead of points.
    """
    benches = list(dict.fromkeys(points["benchmark"])) or ["(none)"]
    ncols = 2 if len(benches) > 1 else 1
    nrows = math.ceil(len(benches) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.8 * ncols, 3.4 * nrows), squeeze=False)
    for ax, b in zip(axes.flat, benches):
        p = points[points["benchmark"] == b].reset_index(drop=True)
        profiles = list(p["profile"])
        y = np.arange(len(profiles))
        drawn = p.dropna(subset=["uni10x", "gdo"])
        if drawn.empty:
            _empty(ax, f"{b}: " + "; ".join(dict.fromkeys((empty_text or {}).get(x, "not evaluated") for x in profiles)))
            ax.set_title(b, fontsize=10, fontweight="bold")
            continue
        span = float(np.nanmax(drawn[["uni10x", "gdo"]].to_numpy()) - np.nanmin(drawn[["uni10x", "gdo"]].to_numpy()))
        pad = max(span * 0.04, 0.05)
        for yi, r in zip(y, p.itertuples(index=False)):
            if pd.isna(r.uni10x) or pd.isna(r.gdo):
                ax.text(0.5, yi, (empty_text or {}).get(r.profile, "not evaluated"), transform=ax.get_yaxis_transform(),
                        ha="center", va="center", fontsize=7, color="grey")
                continue
            ax.plot([r.uni10x, r.gdo], [yi, yi], color="#cfd6de", lw=3, zorder=1)
            ax.scatter([r.uni10x], [yi], marker="s", s=45, color=UNI_COLOR, zorder=3)
            ax.scatter([r.gdo], [yi], marker="o", s=50, color=PROFILE_COLORS.get(r.profile, GDO_COLOR), zorder=4)
            ax.text(max(r.uni10x, r.gdo) + pad, yi, delta_label(r.delta), va="center", fontsize=8, color="#333333")
        ax.set_yticks(y, profiles, fontsize=8)
        lo, hi = float(np.nanmin(drawn[["uni10x", "gdo"]].to_numpy())), float(np.nanmax(drawn[["uni10x", "gdo"]].to_numpy()))
        ax.set_xlim(lo - max(span * 0.1, 0.3), hi + max(span * 0.25, 0.6))
        ax.set_ylim(-0.5, len(profiles) - 0.5)
        ax.grid(True, axis="x", color="#f0f0f0")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.set_xlabel("Accuracy (%)", fontsize=9)
        ax.set_title(b, fontsize=10, fontweight="bold")
    for ax in list(axes.flat)[len(benches):]:
        ax.axis("off")
    handles = [Line2D([], [], color=UNI_COLOR, marker="s", lw=0, ms=8, label="Uni-10x"),
               Line2D([], [], color="#4a5563", marker="o", lw=0, ms=8, label="GDO")]
    fig.legend(handles=handles, loc="upper center", ncol=2, frameon=False, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=9, y=0.01, va="bottom", color="#444444")
    fig.tight_layout(rect=(0, 0.04 if title else 0, 1, 0.96))
    return fig


def plot_heatmap(matrix: pd.DataFrame, title: str = "") -> plt.Figure:
    """Profiles (rows) x MVBench subtasks (columns) deltas in pp, the release's colours, cells labelled '+6.5'."""
    fig, ax = plt.subplots(figsize=(max(8, 0.55 * matrix.shape[1] + 2), 0.5 * matrix.shape[0] + 2.6))
    values = matrix.astype(float)
    if values.notna().any().any():
        lim = float(np.nanmax(np.abs(values.to_numpy()))) or 1.0
        labels = values.apply(lambda col: [signed(x, 1, missing="") for x in col])
        with warnings.catch_warnings():  # seaborn 0.13 calls Colormap.set_bad, pending deprecation in matplotlib 3.10
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            sns.heatmap(values, ax=ax, cmap=heatmap_cmap(), center=0, vmin=-lim, vmax=lim, annot=labels, fmt="",
                        annot_kws={"fontsize": 7, "color": "#222222"}, linewidths=0.8, linecolor="white",
                        cbar_kws={"ticks": [-lim, -lim / 2, 0, lim / 2, lim], "format": "%.1f"})
    else:
        _empty(ax, "no MVBench subtask evaluated")
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(axis="x", labelrotation=55, labelsize=8)
    plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    ax.tick_params(axis="y", labelrotation=0, labelsize=9)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


METHOD_PANELS = (
    ("Shared Pool", "image QA + video QA\n\none candidate pool\n(LLaVA-OneVision,\nLLaVA-Video)"),
    ("Six Descriptors", "Flow (motion)     VDS\n\nTemporal     Consistency\n\nDifficulty     Coverage"),
    ("Shared Scorer", "ρ(x)\nshared ranking\n\nlevel 1: quality terms\nlevel 2: text terms"),
    ("Goal Controls", "MinLoss     Diverse\n\nTemp     Temp+\n\nbudget, video share,\ntemporal pressure"),
    ("Output Subsets", "GDO 1x\n(the optimised subset)\n\nvs\n\nUni-10x\n(uniform, 10x larger)"),
)


def plot_schematic() -> plt.Figure:
    """The method overview as the release draws it: five panels joined by arrows."""
    n = len(METHOD_PANELS)
    fig, ax = plt.subplots(figsize=(2.6 * n, 3.4))
    ax.set_xlim(0, n)
    ax.set_ylim(0, 1)
    ax.axis("off")
    teal = "#1f7f7a"
    for i, (head, body) in enumerate(METHOD_PANELS):
        ax.add_patch(FancyBboxPatch((i + 0.06, 0.06), 0.82, 0.86, boxstyle="round,pad=0.01,rounding_size=0.03",
                                    fc="#f7f8f8", ec="#c8cdd0", lw=1.2))
        ax.text(i + 0.47, 0.84, head, ha="center", va="center", fontsize=11, fontweight="bold", color="#1d3b4f")
        ax.plot([i + 0.40, i + 0.54], [0.78, 0.78], color=teal, lw=2)
        ax.text(i + 0.47, 0.44, body, ha="center", va="center", fontsize=8, color="#333333", linespacing=1.3)
        if i < n - 1:
            ax.annotate("", xy=(i + 1.07, 0.5), xytext=(i + 0.89, 0.5),
                        arrowprops={"arrowstyle": "simple", "color": teal, "lw": 0})
    fig.tight_layout()
    return fig
