"""Subtask groups (paper_numbers/README.md): MVB Motion, MVB Reasoning, and the heatmap's overall mean.

MVB Motion = mean delta of the first 11 MVBench subtasks of the heatmap (Action Antonym ... Unexpected
Action); MVB Reasoning = mean of Character Order, Counterfactual Inference, Egocentric Navigation and
Episodic Reasoning; printed rounded half-to-even to one decimal (gdo_utils.report.fmt). A group with a
missing member is missing.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from .names import MVB_MOTION, MVB_REASONING, MVBENCH, subtask_key


def group_mean(deltas: Mapping[str, float], members: tuple[str, ...]) -> float:
    """Mean of deltas[m] over the members (NaN when any member is missing)."""
    values = [deltas.get(m, float("nan")) for m in members]
    return float("nan") if any(np.isnan(values)) else float(np.mean(values))


def mvbench_groups(deltas: Mapping[str, float]) -> dict[str, float]:
    """mvb_motion, mvb_reasoning and mvb_all (mean of all 20 subtasks) from per-subtask deltas keyed by lmms-eval name."""
    return {"mvb_motion": group_mean(deltas, MVB_MOTION), "mvb_reasoning": group_mean(deltas, MVB_REASONING),
            "mvb_all": group_mean(deltas, tuple(k for k, _ in MVBENCH))}


def heatmap_deltas(heatmap: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Published heatmap (subtask, profile, delta_pp) -> {profile: {lmms-eval key: delta}}."""
    out: dict[str, dict[str, float]] = {}
    for row in heatmap.itertuples(index=False):
        out.setdefault(row.profile, {})[subtask_key("MVBench", row.subtask)] = float(row.delta_pp)
    return out
