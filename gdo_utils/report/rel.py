"""OFA's relative performance: Rel = (100/10) * sum_b score_b(subset) / score_b(full data).

Ten image benchmarks, MME as its raw perception score. A Rel with a missing benchmark is missing;
`rel_partial` gives the mean over the benchmarks both runs have (with their count) for a partial run.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from .names import IMAGE_BENCHMARKS, benchmark_key

TOLERANCE = 0.1  # printed Rel has one decimal; a consistent row recomputes within 0.1


def _ratios(scores: Mapping[str, float], full: Mapping[str, float], benchmarks: Iterable[str]) -> list[float]:
    out = []
    for b in benchmarks:
        s, f = scores.get(b, float("nan")), full.get(b, float("nan"))
        out.append(float("nan") if np.isnan(s) or np.isnan(f) or f == 0 else s / f)
    return out


def rel(scores: Mapping[str, float], full: Mapping[str, float], benchmarks: Iterable[str] = IMAGE_BENCHMARKS) -> float:
    """100 * mean over the benchmarks of score / full-data score; NaN when any is missing."""
    r = _ratios(scores, full, benchmarks)
    return float("nan") if not r or any(np.isnan(r)) else 100.0 * float(np.mean(r))


def rel_partial(scores: Mapping[str, float], full: Mapping[str, float],
                benchmarks: Iterable[str] = IMAGE_BENCHMARKS) -> tuple[float, int]:
    """(100 * mean ratio over the benchmarks present in both, how many); (NaN, 0) when none."""
    r = [x for x in _ratios(scores, full, benchmarks) if not np.isnan(x)]
    return (100.0 * float(np.mean(r)), len(r)) if r else (float("nan"), 0)


def companion_scores(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """A companion table (method, VQAv2, ..., Rel) -> {method: {benchmark key: score}}."""
    cols = [c for c in table.columns if c not in ("method", "Rel")]
    return {row["method"]: {benchmark_key(c): float(row[c]) for c in cols} for _, row in table.iterrows()}


def companion_check(table: pd.DataFrame) -> pd.DataFrame:
    """Rel recomputed from each row's ten scores (full data = the first row) vs the printed Rel."""
    scores = companion_scores(table)
    full = scores[table["method"].iloc[0]]
    rows = []
    for _, row in table.iterrows():
        value = rel(scores[row["method"]], full)
        rows.append({"method": row["method"], "rel_printed": float(row["Rel"]), "rel_recomputed": value,
                     "difference": value - float(row["Rel"]),
                     "consistent": bool(abs(value - float(row["Rel"])) <= TOLERANCE + 1e-9)})
    return pd.DataFrame(rows)
