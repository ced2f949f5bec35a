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
    media_error: str = ""              # set when the row is refused before decoding (e.g. a path leaving media_root)

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


class DuplicateIdError(BenchmarkFormatError):
    """Two questions of one benchmark share an id (or an MVBench row repeats another); the message names it."""


class UnknownBenchmarkError(ValueError):
    """A benchmark name that no registry knows; the message lists the known names."""


def refuse_duplicate_ids(bench: str, source: Path, ids: list[str]) -> None:
    """Question ids must be unique: a repeated one is a DuplicateIdError naming it (and how many repeat)."""
    seen: set[str] = set()
    dup = [i for i in ids if i in seen or seen.add(i)]
    if dup:
        more = f" (and {len(set(dup)) - 1} more repeated ids)" if len(set(dup)) > 1 else ""
        raise DuplicateIdError(f"{bench}: {source}: question id {dup[0]!r} occurs more than once{more}")


def read_text(path: Path) -> str:
    """A benchmark file's text; bytes that are not UTF-8 are a format error naming the file, line and byte."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise BenchmarkFormatError(f"{path} line {line}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None


def read_json_list(path: Path) -> list:
    """A benchmark JSON file whose top level is a list; bad bytes, bad JSON or another top level name the file."""
    import json

    try:
        rows = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise BenchmarkFormatError(f"{path} line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg})") from None
    if not isinstance(rows, list):
        raise BenchmarkFormatError(f"{path}: top level must be a list of rows, got {type(rows).__name__}")
    return rows


def read_parquet_table(path: Path):
    """A benchmark Parquet file as a DataFrame; a truncated or foreign file is a format error naming it."""
    import pandas as pd
    import pyarrow as pa

    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise BenchmarkFormatError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None


def require_object(row: object, where: str) -> dict:
    """A row that must be a JSON object (a format error naming where it is otherwise)."""
    if not isinstance(row, dict):
        raise BenchmarkFormatError(f"{where}: a row must be a JSON object, got {type(row).__name__}")
    return row


def first_existing(candidates: list[Path]) -> Path:
    """The first candidate path that exists, else the first one (then counted as a missing video)."""
    return next((p for p in candidates if p.exists()), candidates[0])
