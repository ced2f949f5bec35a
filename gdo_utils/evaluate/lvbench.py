"""LVBench: `video_info.meta.jsonl` (THUDM/LVBench), one line per video with its `qa` list, + `<key>.mp4`.

Line: {key: YouTube id, type, video_info, qa: [{uid, question: "stem\\n(A) ..\\n(B) ..\\n(C) ..\\n(D) ..",
answer: letter, question_type: [..], time_reference}]}. Videos: `<media_root>/<key>.mp4`. Prompt:
lmms-eval 0.5.0 `lvbench_doc_to_text` (question with its inline options + "\\nAnswer the question
with the option letter", no final period); extractor as VideoMME's. Metric: micro accuracy, and by
question type where a question counts in each of its types (the official `compute_accuracy`).
"""
from __future__ import annotations

import json
from pathlib import Path

from .extract import first_upper_abcd, reasoning_answer, split_inline_options
from .types import LETTERS, Benchmark, BenchmarkFormatError, Question, ReleaseParse, first_existing, read_text

NAME = "lvbench"
POST_PROMPT = "\nAnswer the question with the option letter"


def find_video(media_root: Path, key: str) -> Path:
    return first_existing([media_root / f"{key}{ext}" for ext in (".mp4", ".mkv", ".webm")])


def load(annotations: Path, media_root: Path) -> list[Question]:
    path = Path(annotations)
    if path.is_dir():
        path = path / "video_info.meta.jsonl"
    out: list[Question] = []
    for ln, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BenchmarkFormatError(f"{path} line {ln}: not valid JSON ({exc.msg})") from None
        for field in ("key", "qa"):
            if not isinstance(rec, dict) or field not in rec:
                raise BenchmarkFormatError(f"{path} line {ln}: field {field!r} missing")
        if not isinstance(rec["qa"], list):
            raise BenchmarkFormatError(f"{path} line {ln}: field 'qa' must be a list of questions")
        media = str(find_video(Path(media_root), str(rec["key"])))
        for j, qa in enumerate(rec["qa"]):
            for field in ("uid", "question", "answer", "question_type"):
                if not isinstance(qa, dict) or field not in qa:
                    raise BenchmarkFormatError(f"{path} line {ln} qa[{j}]: field {field!r} missing")
            _, texts = split_inline_options(str(qa["question"]))
            if len(texts) < 2 or qa["answer"] not in LETTERS[: len(texts)]:
                raise BenchmarkFormatError(f"{path} line {ln} qa[{j}]: inline options '(A) ..' and a letter answer expected")
            types = qa["question_type"] if isinstance(qa["question_type"], list) else [qa["question_type"]]
            out.append(Question(NAME, str(qa["uid"]), str(qa["question"]), (), tuple(texts), str(qa["answer"]),
                                media, question_types=tuple(str(t) for t in types)))
    return out


def prompt(q: Question) -> str:
    return q.question + POST_PROMPT


def release_parse(reply: str, q: Question) -> ReleaseParse:
    parsed = first_upper_abcd(reasoning_answer(reply))
    return ReleaseParse(parsed, parsed == q.gold)


BENCHMARK = Benchmark(NAME, load, prompt, release_parse, levels=("question_type",), max_options=4)
