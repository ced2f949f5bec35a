"""What every benchmark module declares: the question record and the benchmark spec (lmms-eval's task shape).

A benchmark is a loader (official files -> `Question`s), a prompt (the exact text the release's
lmms-eval chat wrapper sends after the video), a release extractor (lmms-eval 0.5.0's, quirks kept)
and the breakdown levels its metric reports. The engine, the robust parser and the metrics are shared.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class Question:
    """One multiple-choice question about one video (file or frame folder), possibly a `bound` segment."""

    benchmark: str
    qid: str
    question: str                      # the question text as the file has it
    options: tuple[str, ...]           # option lines as the benchmark prints them (VideoMME: "A. x"), or texts
    option_texts: tuple[str, ...]      # option texts without letters (robust parser)
    gold: str                          # gold letter
    media: str                         # absolute path: video file or frame folder
    start: float | None = None         # bound (seconds), MVBench main-branch tasks
    end: float | None = None
    frame_fps: float | None = None     # frame folders: the fps their frames were extracted at
    subtask: str = ""                  # MVBench subtask
    duration: str = ""                 # VideoMME short/medium/long
    domain: str = ""                   # VideoMME domain
    task_type: str = ""                # VideoMME task_type / MLVU task type
    question_types: tuple[str, ...] = field(default_factory=tuple)  # LVBench (a list)

    @property
    def letters(self) -> str:
        return LETTERS[: len(self.option_texts)]


@dataclass(frozen=True)
class ReleaseParse:
    """lmms-eval 0.5.0's view of one reply: the extracted value, whether it scores, whether it is counted."""

    parsed: str
    correct: bool
    counted: bool = True   # MVBench: an empty reply is left out of the denominator


@dataclass(frozen=True)
class Benchmark:
    """A registry entry: everything benchmark-specific, nothing else."""

    name: str
    load: Callable[[Path, Path], list[Question]]        # (annotations, media_root) -> questions
    prompt: Callable[[Question], str]                    # text after the video
    release_parse: Callable[[str, Question], ReleaseParse]
    levels: tuple[str, ...]                              # breakdown levels (C3 level names)
    overall: str = "micro"                               # "micro" or "mean:<level>" (mean of that level's accuracies)
    max_options: int = 5


class BenchmarkFormatError(ValueError):
    """A benchmark file does not have the official layout; the message names the file, row and field."""


def first_existing(candidates: list[Path]) -> Path:
    """The first candidate path that exists, else the first one (then counted as a missing video)."""
    return next((p for p in candidates if p.exists()), candidates[0])
