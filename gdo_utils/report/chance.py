"""Chance levels of a run's video benchmarks, from the option counts of the benchmark files the run evaluated.

chance (overall) follows the benchmark's own overall metric: a micro accuracy's chance is the mean of 1/k over
the questions (k = option count); a mean of per-group accuracies (MVBench's subtasks, MLVU's task types) has
the mean of the groups' chances. Subtask keys get their own. A benchmark whose files cannot be read has no
chance level (NaN): the report then says so instead of stating a headline (gdo_utils.binomial).
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

from ..binomial import benchmark_chance
from ..config import Params
from .names import VIDEO_BENCHMARKS

log = logging.getLogger(__name__)


@contextmanager
def quiet(*names: str):
    """Raise the named loggers to WARNING for the duration (restored after)."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, levels):
            lg.setLevel(lvl)


def run_chance(params: Params, benchmarks=VIDEO_BENCHMARKS) -> dict[str, dict[str, float]]:
    """{benchmark: {"" | subtask key: chance %}} for each benchmark of evaluate.data whose files can be read."""
    with quiet("faiss.loader", "gdo_utils.evaluate"):  # reading option counts is not news: no import/loader chatter
        from ..evaluate import registry
        from ..evaluate.stage import load_questions

    out: dict[str, dict[str, float]] = {}
    for b in benchmarks:
        if b not in params.evaluate.data:
            continue
        try:
            with quiet("gdo_utils.evaluate"):
                qs = load_questions(params, b)
        except (OSError, ValueError, KeyError) as e:  # files absent here: no chance level, said in the report
            log.info("chance level of %s unknown: %s", b, e)
            continue
        spec = registry.get(b)
        out[b] = benchmark_chance(qs, spec.levels, spec.overall)
    return out
