"""Chance levels of a run's video benchmarks, from the option counts of the benchmark files the run evaluated.

chance (overall) follows the benchmark's own overall metric: a micro accuracy's chance is the mean of 1/k over
the questions (k = option count); a mean of per-group accuracies (MVBench's subtasks, MLVU's task types) has
the mean of the groups' chances. Subtask keys get their own. A benchmark whose files cannot be read has no
chance level (NaN): the report then says so instead of stating a headline (gdo_utils.binomial).
"""
from __future__ import annotations

import logging

import numpy as np

from ..binomial import chance_level
from ..config import Params
from .names import VIDEO_BENCHMARKS

log = logging.getLogger(__name__)


def _group_key(q, level: str) -> list[str]:
    if level == "question_type":
        return list(q.question_types)
    return [getattr(q, level)]


def benchmark_chance(questions, levels: tuple[str, ...], overall: str) -> dict[str, float]:
    """{"": overall chance, subtask key: its chance} from a benchmark's questions (percent)."""
    groups: dict[str, list[int]] = {}
    for q in questions:
        for level in levels:
            for key in _group_key(q, level):
                groups.setdefault(key, []).append(len(q.option_texts))
    out = {k: chance_level(v) for k, v in groups.items()}
    if overall.startswith("mean:"):
        level = overall.split(":", 1)[1]
        keys = {k for q in questions for k in _group_key(q, level)}
        out[""] = float(np.mean([out[k] for k in sorted(keys)])) if keys else float("nan")
    else:
        out[""] = chance_level(len(q.option_texts) for q in questions)
    return out


def run_chance(params: Params, benchmarks=VIDEO_BENCHMARKS) -> dict[str, dict[str, float]]:
    """{benchmark: {"" | subtask key: chance %}} for each benchmark of evaluate.data whose files can be read."""
    from ..evaluate import registry
    from ..evaluate.stage import load_questions

    out: dict[str, dict[str, float]] = {}
    for b in benchmarks:
        if b not in params.evaluate.data:
            continue
        try:
            qs = load_questions(params, b)
        except (OSError, ValueError, KeyError) as e:  # files absent here: no chance level, said in the report
            log.info("chance level of %s unknown: %s", b, e)
            continue
        spec = registry.get(b)
        out[b] = benchmark_chance(qs, spec.levels, spec.overall)
    return out
