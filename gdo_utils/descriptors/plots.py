"""Looks at the descriptors: distributions per bucket, correlations, extremes, the level-1 histogram."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

SHOWN = ["amm", "frame_diversity", "vds", "ppl", "tnc", "self_consistency", "cluster_rep", "quality"]


def with_pool(desc: pd.DataFrame, qa: pd.DataFrame) -> pd.DataFrame:
    """Descriptors joined with the pool columns a reader wants beside them."""
    cols = ["qa_uid", "bucket", "media_kind", "media", "frame_indices", "n_frames", "source", "question", "answer",
            "video_uid"]
    return desc.merge(qa[cols], on="qa_uid", how="left", validate="one_to_one")


def plot_distributions(df: pd.DataFrame, columns: list[str] = SHOWN) -> plt.Figure:
    """One panel per descriptor, histograms split by bucket (image vs video)."""
    cols = [c for c in columns if c in df]
    fig, axes = plt.subplots(2, (len(cols) + 1) // 2, figsize=(3.2 * ((len(cols) + 1) // 2), 5.6))
    for ax, c in zip(axes.ravel(), cols):
        data = df[[c, "bucket"]].dropna()
        x = np.log10(data[c]) if c == "ppl" else data[c]
        sns.histplot(x=x, hue=data["bucket"], ax=ax, bins=20, element="step", stat="density", common_norm=False,
                     legend=ax is axes.ravel()[0])
        ax.set_xlabel(f"log10 {c}" if c == "ppl" else c)
    for ax in axes.ravel()[len(cols):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_correlations(df: pd.DataFrame, columns: list[str] = SHOWN) -> plt.Figure:
    """Spearman correlations between descriptors (rank-based: PPL's tail does not dominate)."""
    cols = [c for c in columns if c in df]
    corr = df[cols].corr(method="spearman")
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    sns.heatmap(corr, annot=True, fmt=".2f", cmap="vlag", vmin=-1, vmax=1, ax=ax)
    ax.set_title("Spearman correlation of descriptors")
    fig.tight_layout()
    return fig


def plot_quality(df: pd.DataFrame) -> plt.Figure:
    """Histogram of the level-1 quality score per bucket."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    sns.histplot(df, x="quality", hue="bucket", bins=25, element="step", ax=ax)
    ax.set_title("Level-1 quality (GDO section 4)")
    fig.tight_layout()
    return fig


def extremes(df: pd.DataFrame, column: str, n: int = 3, bucket: str | None = "short_video") -> pd.DataFrame:
    """The n lowest and n highest rows of a descriptor (optionally within one bucket)."""
    d = df if bucket is None else df[df["bucket"] == bucket]
    d = d.dropna(subset=[column]).sort_values([column, "qa_uid"], kind="mergesort")
    out = pd.concat([d.head(n).assign(end="lowest"), d.tail(n).assign(end="highest")])
    return out[["end", "qa_uid", column, "question", "answer", "media", "frame_indices", "media_kind", "n_frames"]]


def toy_truth_kinds(qa: pd.DataFrame, toyworld_dir: str | Path) -> pd.Series:
    """Toy world only: the drawn kind of each candidate's media (move / appear / color_change / static / image)."""
    truth = pd.read_parquet(Path(toyworld_dir) / "truth.parquet")
    kind_by_video = dict(zip(truth["media_id"], truth["kind"]))
    return qa["video_uid"].map(kind_by_video).fillna("image").rename("toy_kind")


def scene_of(truth_row: pd.Series) -> dict:
    return json.loads(truth_row["scene"])
