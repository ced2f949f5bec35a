"""Accuracy from the per-question log: overall and per breakdown level, under a named extraction and missing-video policy.

Pure functions over the log table (one row per question, columns of `LOG_COLUMNS`). A question whose
video is missing or undecodable has `media_error` set and is wrong (`missing_video: wrong`) or left
out (`exclude`). In release mode MVBench leaves empty replies out of the denominator
(`counted_release`); a subtask none of whose replies counts scores 0 with its questions as n, as
lmms-eval's aggregate returns 0 there. Overall is the micro accuracy, or the mean of one level's accuracies
(MVBench: of subtasks; MLVU: of task types, M-Avg). LVBench questions count in each of their types.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .types import Benchmark

LEVEL_COLUMN = {"subtask": "subtask", "duration": "duration", "domain": "domain", "task_type": "task_type",
                "question_type": "question_types"}


def _acc(correct: pd.Series) -> float:
    return float(100.0 * correct.sum() / len(correct)) if len(correct) else float("nan")


def scored(log: pd.DataFrame, extraction: str, missing_video: str, task: str | None = None) -> pd.DataFrame:
    """The rows that count, with a boolean `ok` column, under the given extraction mode and missing-video policy.

    Release mode leaves uncounted (MVBench: empty) replies out; a task (rows sharing a `task` column value,
    or the whole log when None) none of whose rows counts scores 0 as lmms-eval's
    `total_correct / total_answered if total_answered > 0 else 0`: its rows are then all counted (wrong), so
    the accuracy is 0 with n = its questions, never NaN with n = 0."""
    df = log.copy()
    missing = df["media_error"].notna()
    if missing_video == "exclude":
        df = df[~missing]
        missing = missing[~missing]
    counted = df["counted_release"].astype(bool) | missing if extraction == "release" else pd.Series(True, index=df.index)
    if extraction == "release" and len(df):
        keys = df[task].astype(str) if task else pd.Series("", index=df.index)
        counted = counted | ~counted.groupby(keys).transform("any")
    df = df[counted].copy()
    df["ok"] = df[f"correct_{extraction}"].astype(bool) & df["media_error"].isna()
    return df


def level_table(df: pd.DataFrame, level: str) -> pd.DataFrame:
    """accuracy and n per value of one breakdown level (values sorted)."""
    col = LEVEL_COLUMN[level]
    d = df[[col, "ok"]].explode(col) if level == "question_type" else df[[col, "ok"]]
    d = d[d[col].notna() & (d[col].astype(str) != "")]
    rows = [{"level": level, "subtask": str(k), "accuracy": _acc(g["ok"]), "n": int(len(g))}
            for k, g in d.groupby(col, sort=True)]
    return pd.DataFrame(rows, columns=["level", "subtask", "accuracy", "n"])


def aggregate(log: pd.DataFrame, bench: Benchmark, extraction: str, missing_video: str) -> dict:
    """{"overall": {accuracy, n}, "levels": [{level, subtask, accuracy, n}, ...]} for one benchmark's log."""
    mean_of = bench.overall.split(":", 1)[1] if bench.overall.startswith("mean:") else None
    df = scored(log, extraction, missing_video, LEVEL_COLUMN[mean_of] if mean_of else None)
    levels = [level_table(df, lv) for lv in bench.levels]
    if bench.overall.startswith("mean:"):
        lv = bench.overall.split(":", 1)[1]
        tab = next(t for t, name in zip(levels, bench.levels) if name == lv)
        acc = float(np.mean(tab["accuracy"])) if len(tab) else float("nan")
    else:
        acc = _acc(df["ok"])
    out_levels = [r for t in levels for r in t.to_dict("records")]
    return {"overall": {"accuracy": acc, "n": int(len(df))}, "levels": out_levels}


def missing_counts(log: pd.DataFrame) -> dict:
    """Questions whose video could not be used, by reason (the part of media_error before ':')."""
    errs = log["media_error"].dropna()
    return {"n_missing": int(len(errs)),
            "by_reason": {k: int(v) for k, v in errs.str.split(":").str[0].value_counts().sort_index().items()}}
