"""Bootstrap intervals for image-benchmark scores and for Rel: the questions resampled, paired across runs.

POPE's F1, VQA soft accuracy and MMBench's circular accuracy are not proportions of independent yes / no
trials, and Rel is a mean of ratios of such scores, so a Wilson interval does not apply. Here the questions
(MMBench: its circular groups) are drawn with replacement within each subtask (POPE's splits, MMBench's
categories keep their sizes), the benchmark's own score is recomputed on every draw, and the 2.5 / 97.5
percentiles give a 95% interval. For Rel the same draw is used for the subset's run and the full-data run
(they answered the same questions), so the interval is that of the paired difference the table reports.

Scores are recomputed from per-unit sufficient statistics (a mean of unit scores, or POPE's per-split
true / false positive and false negative counts): every draw is a matrix product, and the point value
computed this way is checked against the benchmark's own `aggregate` before any interval is given.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

N_BOOT = 2000
LEVEL = 95.0


@dataclass(frozen=True)
class Units:
    """One benchmark log reduced to resampling units: unit keys, stratum of each unit, per-unit statistics."""

    keys: np.ndarray      # unit ids (sorted), to pair two runs' logs
    strata: np.ndarray    # stratum index of each unit
    stats: np.ndarray     # (units, k): [score] for mean-type benchmarks, [tp, fp, fn] for POPE
    kind: str             # "mean" | "f1_by_stratum"
    n_strata: int


def units_of(log: pd.DataFrame, benchmark: str) -> Units:
    """The scored log (columns group, subtask, score, parsed, gold) as units: a group's score is its minimum.

    A group is one question, or MMBench's original row with its circular copies (right only if all are right).
    """
    if benchmark == "pope":
        g = log.sort_values("question_id", kind="mergesort")
        p_yes, g_yes = (g["parsed"] == "yes").to_numpy(), (g["gold"] == "yes").to_numpy()
        stats = np.stack([p_yes & g_yes, p_yes & ~g_yes, (g["parsed"] == "no").to_numpy() & g_yes], 1).astype(float)
        strata_names = g["subtask"].astype(str).to_numpy()
        kind, keys = "f1_by_stratum", g["question_id"].astype(str).to_numpy()
    else:
        grouped = log.groupby(log["group"].astype(str), sort=True)
        unit = grouped.agg(score=("score", "min"), subtask=("subtask", "first"))
        stats = unit[["score"]].to_numpy(dtype=float)
        strata_names = unit["subtask"].astype(str).to_numpy()
        kind, keys = "mean", unit.index.to_numpy()
    names, strata = np.unique(strata_names, return_inverse=True)
    return Units(keys, strata.astype(np.int64), stats, kind, len(names))


def score_from_sums(sums: np.ndarray, counts: np.ndarray, kind: str) -> np.ndarray:
    """Scores (percent) from per-draw, per-stratum statistic sums (draws, strata, k) and unit counts (draws, strata)."""
    if kind == "mean":
        return 100.0 * sums[..., 0].sum(1) / counts.sum(1)
    tp, fp, fn = sums[..., 0], sums[..., 1], sums[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        rec = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(prec + rec > 0, 2 * prec * rec / (prec + rec), 0.0)
    return 100.0 * f1.mean(1)  # POPE's headline: the mean of the per-split F1


def draw_weights(strata: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, units) multiplicities: each stratum's units drawn with replacement, as many as it has."""
    w = np.zeros((n_boot, len(strata)))
    rows = np.arange(n_boot)[:, None]
    for s in np.unique(strata):
        members = np.flatnonzero(strata == s)
        picks = members[rng.integers(0, len(members), size=(n_boot, len(members)))]
        np.add.at(w, (np.broadcast_to(rows, picks.shape), picks), 1.0)
    return w


def scores_under(units: Units, weights: np.ndarray) -> np.ndarray:
    """The benchmark's score under each row of unit multiplicities (the all-ones row: the observed score)."""
    onehot = np.eye(units.n_strata)[units.strata]                       # (units, strata)
    sums = np.einsum("bu,us,uk->bsk", weights, onehot, units.stats)
    counts = weights @ onehot
    return score_from_sums(sums, counts, units.kind)


def observed_score(units: Units) -> float:
    """The score with nothing resampled (every unit once): what the benchmark's own aggregate gives."""
    return float(scores_under(units, np.ones((1, len(units.keys))))[0])


def checked_units(log: pd.DataFrame, benchmark: str, aggregate: Callable[[pd.DataFrame], list]) -> Units | None:
    """Units of the log when their observed score equals the benchmark's own overall score, else None."""
    rows = aggregate(log)
    overall = next((r.accuracy for r in rows if r.level == "overall"), None)
    if overall is None or log.empty:
        return None
    units = units_of(log, benchmark)
    mine = observed_score(units)
    return units if abs(mine - float(overall)) <= 1e-6 * max(1.0, abs(float(overall))) else None


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central `level`% percentile interval of the finite draws (NaN, NaN when there are none)."""
    v = values[np.isfinite(values)]
    if not len(v):
        return float("nan"), float("nan")
    a = (100.0 - level) / 2
    return float(np.percentile(v, a)), float(np.percentile(v, 100.0 - a))


def score_interval(units: Units, n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of one run's score on one benchmark."""
    return percentile_interval(scores_under(units, draw_weights(units.strata, n_boot, np.random.default_rng(seed))))


def rel_interval(pairs: Sequence[tuple[Units, Units]], n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float]:
    """95% paired bootstrap interval of Rel = 100 x mean over benchmarks of score / full-data score.

    `pairs`: per benchmark (the subset's units, the full-data run's units) over the same questions. Each draw
    resamples the questions once for both runs; a benchmark whose full-data score is 0 in a draw is left out
    of that draw's mean, as the point value leaves it out (gdo_utils.evaluate.rel).
    """
    rng = np.random.default_rng(seed)
    ratios = []
    for sub, full in pairs:
        if not np.array_equal(sub.keys, full.keys):
            raise ValueError("the two runs did not answer the same questions: no paired interval")
        w = draw_weights(full.strata, n_boot, rng)
        s, f = scores_under(sub, w), scores_under(full, w)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios.append(np.where(f > 0, s / f, np.nan))
    if not ratios:
        return float("nan"), float("nan")
    r = np.stack(ratios, 1)
    used = (~np.isnan(r)).sum(1)
    rel = np.where(used > 0, 100.0 * np.nansum(r, 1) / np.maximum(used, 1), np.nan)
    return percentile_interval(rel)


def paired_units(logs: Mapping[str, pd.DataFrame], full_logs: Mapping[str, pd.DataFrame],
                 aggregates: Mapping[str, Callable]) -> list[tuple[Units, Units]]:
    """(subset, full) units per benchmark both runs have and whose scores the units reproduce."""
    out = []
    for b in sorted(set(logs) & set(full_logs)):
        sub, full = checked_units(logs[b], b, aggregates[b]), checked_units(full_logs[b], b, aggregates[b])
        if sub is not None and full is not None:
            out.append((sub, full))
    return out
