"""Read a run's evaluation trajectory (contract C3) and look values up in it, never guessing.

outputs/<run>/eval/trajectory.parquet: subset, checkpoint, samples_seen, benchmark, level, subtask,
accuracy, n, engine, contract. A subset's *end* value is its last trained checkpoint (largest
samples_seen); a benchmark not evaluated there is missing (NaN), never taken from an earlier
checkpoint. Curves use the trained checkpoints only (samples_seen > 0): the base model is not part
of a training trajectory, and the paper's curves start at the first quarter epoch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..io import read_parquet

COLUMNS = {"subset": "str", "checkpoint": "str", "samples_seen": "int", "benchmark": "str", "level": "str",
           "subtask": "str", "accuracy": "float", "n": "int", "engine": "str", "contract": "str"}
LEVELS = ("overall", "subtask", "duration", "task_type", "question_type", "domain", "split", "metric")
SUBTASK_LEVELS = ("subtask", "task_type", "question_type")  # where the subtask tables look keys up


class TrajectoryError(ValueError):
    """The trajectory table breaks contract C3; the message names the file and the column."""


def trajectory_path(run_dir: str | Path) -> Path:
    """outputs/<run>/eval/trajectory.parquet"""
    return Path(run_dir) / "eval" / "trajectory.parquet"


def validate(df: pd.DataFrame, source: str = "<trajectory>") -> pd.DataFrame:
    """Check columns, types and levels; return a copy with normalised dtypes."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise TrajectoryError(f"{source}: missing column(s) {missing} (contract C3: {list(COLUMNS)})")
    out = df[list(COLUMNS)].copy()
    for col, kind in COLUMNS.items():
        if kind == "str":
            if out[col].isna().any():
                raise TrajectoryError(f"{source}: column {col!r} has {int(out[col].isna().sum())} null value(s)")
            out[col] = out[col].astype(str)
        else:
            values = pd.to_numeric(out[col], errors="coerce")
            bad = values.isna() & out[col].notna() if kind == "float" else values.isna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise TrajectoryError(f"{source}: row {row}: column {col!r} is not a number: {out[col].iloc[row]!r}")
            out[col] = values.astype("float64" if kind == "float" else "int64")
    unknown = sorted(set(out["level"]) - set(LEVELS))
    if unknown:
        raise TrajectoryError(f"{source}: column 'level' has unknown value(s) {unknown} (allowed: {list(LEVELS)})")
    return out


def load_trajectory(path: str | Path) -> pd.DataFrame:
    """Read trajectory.parquet (or .csv) and validate it."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no trajectory table (run the evaluation stage first)")
    df = read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p, dtype={"subtask": str}, keep_default_na=False)
    return validate(df, str(p))


def end_samples(traj: pd.DataFrame, subset: str) -> float:
    """samples_seen of the subset's last trained checkpoint (NaN when the subset has none)."""
    s = traj.loc[(traj["subset"] == subset) & (traj["samples_seen"] > 0), "samples_seen"]
    return float(s.max()) if len(s) else float("nan")


def _rows(traj: pd.DataFrame, subset: str, benchmark: str, subtask: str) -> pd.DataFrame:
    m = (traj["subset"] == subset) & (traj["benchmark"] == benchmark)
    if subtask:
        m &= traj["level"].isin(SUBTASK_LEVELS) & (traj["subtask"] == subtask)
    else:
        m &= traj["level"] == "overall"
    return traj[m]


def end_value(traj: pd.DataFrame, subset: str, benchmark: str, subtask: str = "") -> float:
    """Accuracy of a benchmark (overall, or one subtask key) at the subset's last checkpoint, else NaN."""
    last = end_samples(traj, subset)
    if np.isnan(last):
        return float("nan")
    r = _rows(traj, subset, benchmark, subtask)
    r = r[r["samples_seen"] == last]
    return float(r["accuracy"].iloc[0]) if len(r) else float("nan")


def curve(traj: pd.DataFrame, subset: str, benchmark: str) -> pd.DataFrame:
    """samples_seen, accuracy, n of the trained checkpoints evaluated on a benchmark (overall), ascending."""
    r = _rows(traj, subset, benchmark, "")
    r = r[r["samples_seen"] > 0].sort_values("samples_seen", kind="stable")
    return r[["samples_seen", "accuracy", "n"]].drop_duplicates("samples_seen").reset_index(drop=True)


def subtask_keys(traj: pd.DataFrame, subset: str, benchmark: str) -> list[str]:
    """The subtask keys a subset was evaluated on at its last checkpoint (sorted)."""
    last = end_samples(traj, subset)
    m = ((traj["subset"] == subset) & (traj["benchmark"] == benchmark) & (traj["samples_seen"] == last)
         & traj["level"].isin(SUBTASK_LEVELS))
    return sorted(set(traj.loc[m, "subtask"]))


class TrajectoryIndex:
    """End values of a trajectory looked up in O(1): the same answers as `end_value` / `end_samples`."""

    def __init__(self, traj: pd.DataFrame) -> None:
        self.traj = traj
        trained = traj[traj["samples_seen"] > 0]
        self._end = trained.groupby("subset")["samples_seen"].max().astype(float).to_dict()
        at_end = trained[trained["samples_seen"] == trained["subset"].map(self._end)]
        self._values: dict[tuple[str, str, str], float] = {}
        self._n: dict[tuple[str, str, str], int] = {}
        for r in at_end.itertuples(index=False):
            key = (r.subset, r.benchmark, "") if r.level == "overall" else (r.subset, r.benchmark, r.subtask)
            if r.level == "overall" or r.level in SUBTASK_LEVELS:
                self._values.setdefault(key, float(r.accuracy))
                self._n.setdefault(key, int(r.n))

    def end_samples(self, subset: str) -> float:
        """samples_seen of the subset's last trained checkpoint (NaN when none)."""
        return self._end.get(subset, float("nan"))

    def end_value(self, subset: str, benchmark: str, subtask: str = "") -> float:
        """Accuracy at the subset's last checkpoint (overall or one subtask key), else NaN."""
        return self._values.get((subset, benchmark, subtask), float("nan"))

    def end_n(self, subset: str, benchmark: str, subtask: str = "") -> int:
        """Questions behind that accuracy (0 when there is none)."""
        return self._n.get((subset, benchmark, subtask), 0)

    def subsets(self) -> set[str]:
        """The subsets with at least one trained checkpoint."""
        return set(self._end)
