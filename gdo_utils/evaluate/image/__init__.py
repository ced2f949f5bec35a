"""The OFA image suite: one module per benchmark, registered by its trajectory name (C3).

Each entry says how to load the official files (`load(annotations, media_root)`, the two paths of
`evaluate.data.<name>`), how to score one reply (`score(question, reply) -> (parsed, score in [0,1])`),
how to aggregate a per-question log into metric rows, the lmms-eval task it mirrors, the task's
own `max_new_tokens` (lmms-eval 0.5.0 YAML) and whether a GPT judge is needed. Adding a benchmark
is one module and one entry here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from . import gqa, judged, mmbench, mme, pope, sqa, textvqa, vqav2
from .base import BenchmarkFormatError, ImageQuestion, MetricRow

Loader = Callable[[Path, Path], list[ImageQuestion]]  # (annotations, media_root) as in `evaluate.data`


@dataclass(frozen=True)
class ImageBenchmark:
    name: str
    lmms_task: str
    load: Loader
    score: Callable[..., tuple[str, float]]  # (question, reply, mode="release") -> (parsed, score in [0, 1])
    aggregate: Callable[[pd.DataFrame], list[MetricRow]]
    max_new_tokens: int                        # the lmms-eval 0.5.0 task YAML's
    needs_judge: bool = False
    headline: str = "accuracy"
    submission: Callable[[pd.DataFrame], list[dict] | None] | None = None   # a server submission file (VQAv2 test-dev)


def _ignore_mode(fn: Callable[[ImageQuestion, str], tuple[str, float]]) -> Callable[..., tuple[str, float]]:
    """A scorer with one official parser: the same under `release` and `robust`."""
    return lambda q, reply, mode="release": fn(q, reply)


def _entry(name: str, mod: Any, load: Loader, max_new_tokens: int, headline: str, scorer: Any = None,
           needs_judge: bool = False) -> ImageBenchmark:
    task = mod.LMMS_TASKS[name] if hasattr(mod, "LMMS_TASKS") else mod.LMMS_TASK
    return ImageBenchmark(name, task, load, scorer or _ignore_mode(mod.score_reply), mod.aggregate, max_new_tokens,
                          needs_judge, headline)


IMAGE_BENCHMARKS: dict[str, ImageBenchmark] = {
    "mmbench_en": _entry("mmbench_en", mmbench, lambda a, m: mmbench.load(a, "mmbench_en"), 1024, "circular accuracy"),
    "mmbench_cn": _entry("mmbench_cn", mmbench, lambda a, m: mmbench.load(a, "mmbench_cn"), 256, "circular accuracy"),
    "sqa_img": _entry("sqa_img", sqa, lambda a, m: sqa.load(a, m), 16, "accuracy"),
    "pope": _entry("pope", pope, lambda a, m: pope.load(a, m), 128, "F1", scorer=pope.score_reply),
    "mme": _entry("mme", mme, lambda a, m: mme.load(a), 16, "perception score (0-2000)"),
    "gqa": _entry("gqa", gqa, lambda a, m: gqa.load(a, m), 16, "exact match"),
    "vqav2": ImageBenchmark("vqav2", vqav2.LMMS_TASK, lambda a, m: vqav2.load(a, m),
                            _ignore_mode(vqav2.score_reply), vqav2.aggregate, 16,
                            headline="VQA soft accuracy on val (local; the papers: test-dev via the EvalAI submission)",
                            submission=vqav2.submission),
    "textvqa": _entry("textvqa", textvqa, lambda a, m: textvqa.load(a, m), 16, "VQA soft accuracy"),
    "llava_wild": _entry("llava_wild", judged, lambda a, m: judged.load_llava_wild(a, m), 4096,
                         "GPT-judged relative score", needs_judge=True),
    "mmvet": _entry("mmvet", judged, lambda a, m: judged.load_mmvet(a, m), 1024, "GPT-judged score",
                    needs_judge=True),
}
OFA_SUITE = ("vqav2", "gqa", "llava_wild", "sqa_img", "textvqa", "mme", "mmbench_en", "mmbench_cn", "pope", "mmvet")

__all__ = ["IMAGE_BENCHMARKS", "OFA_SUITE", "ImageBenchmark", "ImageQuestion", "MetricRow", "BenchmarkFormatError"]
