"""Figure helpers shared by the notebooks: save as PNG + PDF, pool overview, example frames.

Every figure is written twice (PNG for reading, PDF for papers) under outputs/<run>/figures/ by
`save_figure`; functions return the matplotlib Figure so a notebook shows it inline.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .media import MediaError, load_frames, uniform_indices
from .words import count_words


def save_figure(fig: plt.Figure, path_stem: str | Path, dpi: int = 150) -> list[Path]:
    """Write `<stem>.png` and `<stem>.pdf` (deterministic metadata) and return both paths."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None})):
        p = stem.with_suffix(f".{ext}")
        fig.savefig(p, dpi=dpi, bbox_inches="tight", metadata=meta)
        out.append(p)
    return out


def plot_pool_overview(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Four panels: bucket split, frames per candidate, question/answer lengths, QA per source."""
    fig, ax = plt.subplots(1, 4, figsize=(17, 3.6))
    counts = table["bucket"].value_counts().sort_index()
    ax[0].bar(counts.index, counts.values, color=["#4C72B0", "#DD8452", "#55A868"][: len(counts)])
    ax[0].set_title("candidates per bucket")
    ax[1].hist(table["n_frames"], bins=np.arange(0, table["n_frames"].max() + 2) - 0.5, color="#4C72B0")
    ax[1].set_title("frames per candidate (after T-subsampling)")
    qn = count_words(table["question"])
    an = count_words(table["answer"])
    ax[2].hist([qn, an], bins=20, label=["question", "answer"], color=["#4C72B0", "#DD8452"])
    ax[2].set_title("length (word tokens)")
    ax[2].legend()
    src = table["source"].value_counts().sort_values()
    ax[3].barh(src.index, src.values, color="#8172B3")
    ax[3].set_title("QA pairs per source")
    ax[3].tick_params(axis="y", labelsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_examples(rows: pd.DataFrame, frames_per_row: int = 6, max_frames: int = 32) -> plt.Figure:
    """One row per candidate: up to `frames_per_row` of its frames (uniform) and its QA as the title."""
    n = len(rows)
    fig, axes = plt.subplots(n, frames_per_row, figsize=(2.0 * frames_per_row, 2.3 * n), squeeze=False)
    for r, (_, row) in enumerate(rows.iterrows()):
        try:
            frames = load_frames(list(row["media"]), list(row["frame_indices"]) if row["media_kind"] == "video_file" else None,
                                 max_frames=max_frames)
        except MediaError:
            frames = np.zeros((0, 8, 8, 3), np.uint8)
        idx = uniform_indices(len(frames), frames_per_row)
        for c in range(frames_per_row):
            a = axes[r, c]
            a.axis("off")
            if c < len(idx):
                a.imshow(frames[idx[c]])
        q = row["question"] if len(row["question"]) < 90 else row["question"][:87] + "..."
        axes[r, 0].set_title(f"{row['qa_uid']}\nQ: {q}\nA: {row['answer'][:60]}", fontsize=7, loc="left")
    fig.tight_layout()
    return fig
