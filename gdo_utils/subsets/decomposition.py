"""What made the top picks of a subset rank high: the level-2 score split into its additive terms.

`gdo_utils.score.level2_score` already returns every term as a column; score = term_base + term_vds
+ term_quality + term_missing_descriptors (term_base = w * tanh(base / 3), base built from naturalness,
difficulty, alignment, temporal bonus and source prior). This module only selects and draws them.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..config import Params
from .build import subset_rows
from .context import PoolContext
from .files import column_of

TERMS = ("term_base", "term_vds", "term_quality", "term_missing_descriptors")
BASE_INPUTS = ("naturalness", "difficulty", "alignment", "temporal_bonus", "source_prior", "base")


def top_picks(params: Params, name: str, ctx: PoolContext, n: int = 8) -> pd.DataFrame:
    """The n highest-scoring rows of a built subset with their score terms and the inputs of `base`."""
    rows = subset_rows(params, name, ctx)
    scores = ctx.scores().iloc[rows]
    top = scores.sort_values(["score", "tie"], ascending=False, kind="stable").head(n)
    info = ctx.table.loc[top.index, ["bucket"]].assign(question=column_of(ctx, top.index.to_numpy(), "question").to_pylist())
    out = pd.concat([top[["qa_uid", "score", *TERMS, *BASE_INPUTS]], info], axis=1)
    return out.reset_index(drop=True)


def check_sum(df: pd.DataFrame, atol: float = 1e-9) -> bool:
    """Whether score == the sum of the terms on every row (the decomposition is exact)."""
    return bool(np.allclose(df[list(TERMS)].sum(axis=1), df["score"], atol=atol))


def plot_decomposition(df: pd.DataFrame, title: str = "") -> plt.Figure:
    """Horizontal stacked bars of the score terms of each pick (negative terms to the left), score as a dot."""
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(df) + 1.4))
    y = np.arange(len(df))
    pos, neg = np.zeros(len(df)), np.zeros(len(df))
    for i, t in enumerate(TERMS):
        v = df[t].to_numpy(dtype=float)
        left = np.where(v >= 0, pos, neg)
        ax.barh(y, v, left=left, color=f"C{i}", label=t.removeprefix("term_"))
        pos, neg = pos + np.clip(v, 0, None), neg + np.clip(v, None, 0)
    ax.scatter(df["score"], y, color="black", zorder=3, s=14, label="score")
    ax.set_yticks(y, [f"{u} ({b})" for u, b in zip(df["qa_uid"], df["bucket"])], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="gray", lw=0.8)
    ax.set_xlabel("contribution to the level-2 score")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
