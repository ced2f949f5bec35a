"""Metric aggregation on hand-made per-question logs (expected values worked out by hand)."""
from __future__ import annotations

import pandas as pd
import pytest

from gdo_utils.evaluate import registry
from gdo_utils.evaluate.engine import LOG_COLUMNS
from gdo_utils.evaluate.metrics import aggregate, missing_counts


def _log(rows: list[dict]) -> pd.DataFrame:
    base = {"benchmark": "", "subtask": "", "duration": "", "domain": "", "task_type": "", "question_types": [],
            "prompt": "", "prompt_hash": "", "reply": "x", "parsed_release": "", "parsed_robust": "", "gold": "A",
            "correct_release": False, "correct_robust": False, "counted_release": True, "media_error": None,
            "n_frames": 4}
    return pd.DataFrame([{**base, "question_id": f"q{i}", **r} for i, r in enumerate(rows)])[LOG_COLUMNS]


def _levels(res: dict, level: str) -> dict:
    return {r["subtask"]: (round(r["accuracy"], 2), r["n"]) for r in res["levels"] if r["level"] == level}


def test_mlvu_mean_of_task_accuracies_differs_from_pooled():
    log = _log([{"task_type": "order", "correct_release": True},
                {"task_type": "count", "correct_release": True},
                {"task_type": "count"}, {"task_type": "count"}])
    res = aggregate(log, registry.get("mlvu"), "release", "wrong")
    assert _levels(res, "task_type") == {"count": (33.33, 3), "order": (100.0, 1)}
    assert res["overall"]["accuracy"] == pytest.approx((100 + 100 / 3) / 2)   # 66.67, pooled would be 50
    assert res["overall"]["n"] == 4


def test_videomme_by_duration_task_type_and_missing_policies():
    log = _log([{"duration": "short", "task_type": "Temporal Perception", "correct_release": True},
                {"duration": "short", "task_type": "Counting Problem"},
                {"duration": "medium", "task_type": "Temporal Perception", "correct_release": True},
                {"duration": "long", "task_type": "Counting Problem"},
                {"duration": "long", "task_type": "Counting Problem", "reply": "", "media_error": "missing_media: x.mp4"}])
    bench = registry.get("videomme")
    wrong = aggregate(log, bench, "release", "wrong")
    assert _levels(wrong, "duration") == {"long": (0.0, 2), "medium": (100.0, 1), "short": (50.0, 2)}
    assert _levels(wrong, "task_type") == {"Counting Problem": (0.0, 3), "Temporal Perception": (100.0, 2)}
    assert (wrong["overall"]["accuracy"], wrong["overall"]["n"]) == (40.0, 5)
    excl = aggregate(log, bench, "release", "exclude")
    assert (excl["overall"]["accuracy"], excl["overall"]["n"]) == (50.0, 4)
    assert _levels(excl, "duration")["long"] == (0.0, 1)
    assert missing_counts(log) == {"n_missing": 1, "by_reason": {"missing_media": 1}}


def test_lvbench_question_counts_in_each_of_its_types():
    log = _log([{"question_types": ["reasoning", "event understanding"], "correct_release": True},
                {"question_types": ["event understanding"]}])
    res = aggregate(log, registry.get("lvbench"), "release", "wrong")
    assert _levels(res, "question_type") == {"event understanding": (50.0, 2), "reasoning": (100.0, 1)}
    assert (res["overall"]["accuracy"], res["overall"]["n"]) == (50.0, 2)


def test_mvbench_mean_of_subtasks_and_empty_reply_rule():
    log = _log([{"subtask": "action_count", "correct_release": True, "correct_robust": True},
                {"subtask": "action_count", "reply": "", "counted_release": False},
                {"subtask": "state_change"},
                {"subtask": "state_change", "reply": "", "media_error": "unreadable_media: v.mp4"}])
    bench = registry.get("mvbench")
    rel = aggregate(log, bench, "release", "wrong")
    # release: the empty reply leaves action_count's denominator (1/1); a missing video still counts (0/2)
    assert _levels(rel, "subtask") == {"action_count": (100.0, 1), "state_change": (0.0, 2)}
    assert rel["overall"]["accuracy"] == 50.0 and rel["overall"]["n"] == 3
    rob = aggregate(log, bench, "robust", "wrong")
    assert _levels(rob, "subtask") == {"action_count": (50.0, 2), "state_change": (0.0, 2)}
    assert rob["overall"]["accuracy"] == 25.0
    excl = aggregate(log, bench, "robust", "exclude")
    assert _levels(excl, "subtask") == {"action_count": (50.0, 2), "state_change": (0.0, 1)}
